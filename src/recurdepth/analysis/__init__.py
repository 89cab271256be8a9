"""The paper's analyses (§5 and appendix): activation reuse, linear probes, CKA, feature
visualisation and receptive fields. Every analysis reads per-iteration states from the model's
own ``iterate`` (see :mod:`recurdepth.analysis.features`), never from module-keyed hooks.
The ``analyze_*`` functions run an analysis on trained run folders and write its JSON, CSV and
PNG outputs, as ``recurdepth analyze`` does; they are the registered analyses
(:mod:`recurdepth.analysis.registry`, one file each in :mod:`recurdepth.analysis.registered`).
"""

from recurdepth.lazy import lazy_exports

# name -> module that defines it; imported on first use (most of them import torch).
_EXPORTS = {
    "MinibatchCKA": "recurdepth.analysis.cka",
    "StreamingLinearCKA": "recurdepth.analysis.cka",
    "cka": "recurdepth.analysis.cka",
    "cka_matrix": "recurdepth.analysis.cka",
    "compare_models": "recurdepth.analysis.cka",
    "Layer": "recurdepth.analysis.features",
    "capture": "recurdepth.analysis.features",
    "feature_batches": "recurdepth.analysis.features",
    "layers": "recurdepth.analysis.features",
    "FeatVizConfig": "recurdepth.analysis.featviz",
    "preset": "recurdepth.analysis.featviz",
    "visualize": "recurdepth.analysis.featviz",
    "visualize_layers": "recurdepth.analysis.featviz",
    "ProbeResult": "recurdepth.analysis.probes",
    "probe_model": "recurdepth.analysis.probes",
    "train_probes": "recurdepth.analysis.probes",
    "analytic_receptive_field": "recurdepth.analysis.receptive_field",
    "measured_receptive_field": "recurdepth.analysis.receptive_field",
    "receptive_field_table": "recurdepth.analysis.receptive_field",
    "ReuseResult": "recurdepth.analysis.reuse",
    "activation_counts": "recurdepth.analysis.reuse",
    "reuse_histogram": "recurdepth.analysis.reuse",
    "AnalysisOutput": "recurdepth.analysis.runs",
    "Analysis": "recurdepth.analysis.registry",
    "get_analysis": "recurdepth.analysis.registry",
    "list_analyses": "recurdepth.analysis.registry",
    "register_analysis": "recurdepth.analysis.registry",
}


def _analysis_functions() -> dict[str, str]:
    """analyze_<name> -> its module, for every registered analysis (the registry is torch-free)."""
    from recurdepth.analysis.registry import analyses

    return {a.api_name: a.function.partition(":")[0] for a in analyses()}


_EXPORTS.update(_analysis_functions())
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
