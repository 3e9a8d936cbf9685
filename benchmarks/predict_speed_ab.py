"""Before/after timing of whole-scene prediction: run it once per code tree, back to back.

The prediction half of ``benchmarks/finetune_bench.py --parts speed`` without the fine-tuning
(speed does not depend on the head's training): naive path (``model(x)`` per pixel, batch 1,
300 pixels) against ``SharedPredictor`` on every pixel of the real Indian Pines, and
``predict_scene`` of the simulated 610 x 340 x 103 ROSIS scene (window 256, smoothing sigma 3).
Prints one JSON line; compare a tree before a change with the tree after it, e.g.::

    git archive OLD hsizoo | tar -x -C /tmp/old
    for i in 1 2; do PYTHONPATH=/tmp/old python benchmarks/predict_speed_ab.py
                     PYTHONPATH=$PWD  python benchmarks/predict_speed_ab.py; done >> log.jsonl

Results of issue 20's runs: benchmarks/results/predict_speed_ab.jsonl.
"""
import json, os, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch
import hsizoo
from hsizoo.data.download import load_dataset
from hsizoo.predict.engine import SharedPredictor, predict_naive, predict_scene
from hsizoo.data.patches import prepare_cube
from hsizoo.spectral.grid import band_stats
sc = load_dataset("indian_pines", root=os.environ.get("HSIZOO_DATA_DIR", "../shared/data/hsi"), progress=False)
torch.manual_seed(0)
model = hsizoo.create_model("s2former_tiny.ssl_indianpines", pretrained=True, num_classes=16).eval()
std = band_stats(sc.cube, sc.valid).apply(sc.cube)
padded = prepare_cube(std, sc.valid, model.patch_size)
rows, cols = np.nonzero(sc.valid)
pick = np.random.default_rng(0).choice(rows.size, size=300, replace=False)
t = time.perf_counter()
ref = predict_naive(model, padded, rows[pick], cols[pick], sc.wavelengths, batch_size=1)
naive = pick.size / (time.perf_counter() - t)
pred = SharedPredictor(model, sc.wavelengths, 1024)
t = time.perf_counter()
shared = pred.predict_padded(padded, rows, cols)
sh = rows.size / (time.perf_counter() - t)
err = float((shared[pick] - ref).abs().max())
sim = hsizoo.simulate_scene("pavia_university", sensor="rosis", seed=0)
net = hsizoo.create_model("s2former_tiny", num_classes=9)
net.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("head")}, strict=False)
stats = band_stats(sim.cube, sim.valid)
with torch.inference_mode():
    r = predict_scene(net.eval(), sim, stats, None, window_size=256, smooth_sigma=3.0, progress=False)
rec = dict(code=hsizoo.__file__, threads=torch.get_num_threads(), naive_pps=naive, shared_pps=sh,
           ratio=sh / naive, err=err, pavia_s=r.seconds)
print(json.dumps(rec), flush=True)
