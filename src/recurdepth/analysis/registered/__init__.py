"""One torch-free file per analysis, each registering it with
:func:`recurdepth.analysis.registry.register_analysis`; the registry imports every module here."""
