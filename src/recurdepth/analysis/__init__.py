"""The paper's analyses (§5 and appendix): activation reuse, linear probes, CKA, feature
visualisation and receptive fields. Every analysis reads per-iteration states from the model's
own ``iterate`` (see :mod:`recurdepth.analysis.features`), never from module-keyed hooks.
The ``analyze_*`` functions run an analysis on trained run folders and write its JSON, CSV and
PNG outputs, as ``recurdepth analyze`` does.
"""

from recurdepth.analysis.cka import MinibatchCKA, StreamingLinearCKA, cka, cka_matrix, compare_models
from recurdepth.analysis.features import Layer, capture, feature_batches, layers
from recurdepth.analysis.featviz import FeatVizConfig, preset, visualize, visualize_layers
from recurdepth.analysis.probes import ProbeResult, probe_model, train_probes
from recurdepth.analysis.receptive_field import (
    analytic_receptive_field,
    measured_receptive_field,
    receptive_field_table,
)
from recurdepth.analysis.reuse import ReuseResult, activation_counts, reuse_histogram
from recurdepth.analysis.runs import (
    AnalysisOutput,
    analyze_cka,
    analyze_featviz,
    analyze_probes,
    analyze_receptive_field,
    analyze_reuse,
)

__all__ = [
    "AnalysisOutput",
    "FeatVizConfig",
    "Layer",
    "MinibatchCKA",
    "ProbeResult",
    "ReuseResult",
    "StreamingLinearCKA",
    "activation_counts",
    "analyze_cka",
    "analyze_featviz",
    "analyze_probes",
    "analyze_receptive_field",
    "analyze_reuse",
    "analytic_receptive_field",
    "capture",
    "cka",
    "cka_matrix",
    "compare_models",
    "feature_batches",
    "layers",
    "measured_receptive_field",
    "preset",
    "probe_model",
    "receptive_field_table",
    "reuse_histogram",
    "train_probes",
    "visualize",
    "visualize_layers",
]
