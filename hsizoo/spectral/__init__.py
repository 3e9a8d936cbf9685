"""Spectral identity as data: the canonical wavelength grid and the sensors hsizoo knows by name.

:mod:`.grid` places every band on one canonical grid (resampling by wavelength, normalisation);
:mod:`.sensors` holds the presets (band centres and FWHM of AVIRIS, ROSIS, EnMAP, EMIT, ...) and
guesses a sensor from a file's name and band count.
"""
