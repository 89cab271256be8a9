"""Model zoo: parameter counts (SPEC §1), effective depth, weight sharing, every model runs."""

from __future__ import annotations

import json

import pytest
import torch

from recurdepth.cli import main
from recurdepth.data.sequences import VOCAB
from recurdepth.errors import ConfigError
from recurdepth.models import build_model, family_with_option, get_family, list_models
from recurdepth.models.unrolled import UnrolledNet, meta_build


def count(family: str, mode: str, **kw) -> int:
    return meta_build(lambda: build_model(family, mode, **kw)).num_parameters


# SPEC §1: counts that are the paper's own figures or follow exactly from the architecture.
EXACT_COUNTS = [
    ("maze", "recurrent", 8, "mazes", 632_592),
    ("maze", "recurrent", 44, "mazes", 632_592),
    ("maze", "feedforward", 8, "mazes", 632_592),
    ("maze", "feedforward", 12, "mazes", 1_222_416),
    ("maze", "feedforward", 20, "mazes", 2_402_064),
    ("maze", "feedforward", 44, "mazes", 5_941_008),
    ("residual", "recurrent", 7, "cifar10", 11_815_434),
    ("residual", "recurrent", 19, "cifar10", 11_815_434),
    ("residual", "feedforward", 11, "cifar10", 21_252_618),
    ("residual", "feedforward", 15, "cifar10", 30_689_802),
    ("residual", "feedforward", 19, "cifar10", 40_126_986),
    ("mlp", "feedforward", 3, "cifar10", 656_810),
    ("mlp", "recurrent", 3, "cifar10", 656_810),
    ("convnet", "recurrent", 5, "cifar10", 135_306),
]


@pytest.mark.parametrize("family,mode,depth,dataset,expected", EXACT_COUNTS)
def test_parameter_counts_match_spec(family, mode, depth, dataset, expected):
    assert count(family, mode, effective_depth=depth, dataset=dataset) == expected


def test_paper_rounded_counts():
    # Paper §3: "12M" recurrent vs "31M" feed-forward residual at depth 15; Table 1: ResNet-18 11.2M.
    assert round(count("residual", "recurrent", effective_depth=15) / 1e6) == 12
    assert round(count("residual", "feedforward", effective_depth=15) / 1e6) == 31
    assert count("resnet18", "feedforward", dataset="cifar10") == 11_173_962
    # Dilation changes the receptive field, not the parameter count (paper Table 2).
    assert count("maze_dilated", "feedforward", effective_depth=20) == 2_402_064


def bn_residual_count(in_ch: int, classes: int, iters: int, c: int = 256) -> int:
    """Independent count: convs without bias, BN (2 per channel) after every conv."""
    stem = in_ch * c * 9 + 2 * c
    unit_convs = 4 * c * c * 9
    unit_bns = 4 * 2 * c
    head = c * 512 * 9 + 2 * 512 + 512 * classes + classes
    return stem + unit_convs + iters * unit_bns + head


@pytest.mark.parametrize("iters", [1, 2, 3, 4])
def test_bn_residual_counts(iters):
    cifar = count("residual_bn", "recurrent", iters=iters, dataset="cifar10")
    emnist = count("residual_bn", "recurrent", iters=iters, dataset="emnist")
    assert cifar == bn_residual_count(3, 10, iters)
    assert emnist == bn_residual_count(1, 47, iters)
    # Table 1 (3.56M CIFAR-10 / 3.57M EMNIST): 3.55-3.56M for every paper depth on CIFAR-10.
    assert 3.55e6 <= cifar < 3.565e6
    if iters <= 3:
        assert round(emnist / 1e4) == 357


def test_resnet50_sharing_counts():
    full = count("resnet50", "feedforward", dataset="imagenet")
    shared = count("resnet50", "recurrent", dataset="imagenet")
    assert full == 25_557_032  # torchvision's ResNet-50
    # Blocks 3.. of each stage (1, 2, 4, 1 blocks) reuse block 2's convolutions; BN stays per block.
    def bottleneck_convs(c: int) -> int:
        return 4 * c * c + c * c * 9 + c * 4 * c
    saved = sum(n * bottleneck_convs(c) for n, c in [(1, 64), (2, 128), (4, 256), (1, 512)])
    assert shared == full - saved


@pytest.mark.parametrize("family", list_models())
def test_effective_depth_from_structure_matches_formula(family):
    spec = get_family(family)
    for depth in spec.paper_depths:
        for mode in spec.modes:
            model = meta_build(lambda: build_model(
                family, mode, effective_depth=depth if spec.unrolled else None,
                dataset=spec.datasets[0]))
            assert model.effective_depth == depth
            if spec.unrolled:
                assert model.effective_depth == spec.depth_base + spec.depth_per_iter * model.iters


def test_impossible_depth_is_refused_with_valid_depths():
    with pytest.raises(ConfigError, match=r"residual.*valid depths: 7, 11, 15, 19"):
        build_model("residual", "recurrent", effective_depth=9)
    with pytest.raises(ConfigError, match="valid depths: 8, 12, 16"):
        build_model("maze", "feedforward", effective_depth=10)


@pytest.mark.parametrize("kwargs,message", [
    (dict(family="nope", mode="recurrent", iters=1), "valid choices: convnet"),
    (dict(family="maze", mode="sideways", iters=1), "valid choices: recurrent, feedforward"),
    (dict(family="maze", mode="recurrent", iters=1, dataset="cifar10"), "valid data sets: mazes"),
    (dict(family="mlp", mode="recurrent", iters=1, dataset="mnist"), "valid choices: .*cifar10"),
    (dict(family="maze", mode="recurrent", iters=1, colour=3), "unknown option.*colour"),
    (dict(family="maze", mode="recurrent"), "needs effective_depth or iters"),
    (dict(family="maze", mode="recurrent", iters=0), "iters must be >= 1"),
    (dict(family="maze", mode="recurrent", iters=2, effective_depth=8), "disagree"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build_model(**kwargs)


def test_configs_and_build_model_share_the_depth_rule():
    from recurdepth.training.config import RunConfig, apply_overrides, resolve

    def config(*over):
        return resolve(apply_overrides(RunConfig(), ["runtime.device=cpu", *over]))

    # One rule, two spellings of the keys: build_model's arguments and the config's keys.
    with pytest.raises(ConfigError, match=r"^model\.effective_depth=8 and model\.iters=2 disagree"):
        config("model.effective_depth=8", "model.iters=2")
    with pytest.raises(ConfigError, match=r"^effective_depth=8 and iters=2 disagree"):
        build_model("maze", "recurrent", effective_depth=8, iters=2)
    with pytest.raises(ConfigError, match=r"needs model\.effective_depth or model\.iters; paper "
                                          r"depths: 8, 12"):
        config()
    with pytest.raises(ConfigError, match=r"fixed depth: leave model\.iters unset"):
        config("model.family=resnet18", "model.mode=feedforward", "data.name=cifar10",
               "model.iters=2")
    # A fixed-depth family's depth is its own in a config (a sweep axis may set another).
    resnet = config("model.family=resnet18", "model.mode=feedforward", "data.name=cifar10",
                    "model.effective_depth=50")
    assert (resnet.model.iters, resnet.model.effective_depth) == (None, 18)
    assert (config("model.effective_depth=16").model.iters,
            build_model("maze", "recurrent", effective_depth=16, width=2).iters) == (3, 3)


def test_a_family_option_leads_to_the_family_that_declares_it():
    assert family_with_option("maze_dilated", "dilation") == "maze_dilated"
    assert family_with_option("maze", "dilation") == "maze_dilated"
    with pytest.raises(ConfigError, match="family 'convnet' has no option 'dilation'; families "
                                          "with it: maze_dilated"):
        family_with_option("convnet", "dilation")


SMALL = {"mlp": 16, "convnet": 8, "residual": 8, "residual_bn": 8, "residual_imagenet": 8,
         "maze": 8, "maze_dilated": 8, "maze_recall": 8, "dt_net_1d": 8, "transformer": 16}


def small_model(family: str, mode: str, iters: int = 2):
    spec = get_family(family)
    dataset = spec.datasets[0]
    if spec.unrolled:
        return build_model(family, mode, iters=iters, width=SMALL[family], dataset=dataset)
    return build_model(family, mode, dataset=dataset)


def small_input(dataset: str, batch: int = 2) -> torch.Tensor:
    if dataset == "prefix_sums":  # bit strings as (N, 1, 1, L) images
        return torch.randint(0, 2, (batch, 1, 1, 24)).float()
    if dataset in VOCAB:  # token ids as (N, 1, 1, L) images
        return torch.randint(0, VOCAB[dataset], (batch, 1, 1, 24)).float()
    side = {"cifar10": 32, "svhn": 32, "emnist": 28, "imagenet": 64, "mazes": 24}[dataset]
    channels = 1 if dataset == "emnist" else 3
    return torch.randn(batch, channels, side, side)


def randomise_bn(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


ALL_CONFIGS = [(f, m) for f in list_models() for m in get_family(f).modes]


@pytest.mark.parametrize("family,mode", ALL_CONFIGS)
def test_every_model_forward_backward(family, mode):
    torch.manual_seed(0)
    model = small_model(family, mode)
    x = small_input(model.dataset)
    out = model(x)
    if model.dataset == "mazes":
        assert out.shape == (2, 2, 24, 24)
    elif model.dataset == "prefix_sums":
        assert out.shape == (2, 2, 24)
    elif model.dataset in VOCAB:
        assert out.shape == (2, 10, 24)
    else:
        assert out.shape == (2, get_family(family) and {"cifar10": 10, "svhn": 10, "emnist": 47,
                                                          "imagenet": 1000}[model.dataset])
    assert torch.isfinite(out).all()
    out.float().pow(2).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


RECURRENT = [f for f in list_models() if "recurrent" in get_family(f).modes]


@pytest.mark.parametrize("family", RECURRENT)
def test_feedforward_twin_with_shared_weights_computes_the_same(family):
    torch.manual_seed(0)
    model = small_model(family, "recurrent", iters=3)
    randomise_bn(model)
    model.eval()
    twin = model.feedforward_twin().eval()
    assert twin.mode == "feedforward"
    assert twin.effective_depth == model.effective_depth
    x = small_input(model.dataset)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x), rtol=1e-5, atol=1e-5)
    if isinstance(model, UnrolledNet):
        assert twin.num_parameters > model.num_parameters
        with torch.no_grad():
            for a, b in zip(model.states(x), twin.states(x)):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_recurrent_model_runs_more_iterations_at_test_time():
    torch.manual_seed(0)
    model = build_model("maze", "recurrent", iters=2, width=8).eval()
    x = small_input("mazes")
    with torch.no_grad():
        outs = model.outputs_per_iteration(x, iters=5)
        assert len(outs) == 5
        torch.testing.assert_close(outs[1], model(x))
        torch.testing.assert_close(outs[4], model(x, iters=5))
        assert model.effective_depth_at(5) == 24
        states = model.states(x, iters=5)
        # Iteration 3 applies the same unit to the state after iteration 2.
        torch.testing.assert_close(states[2], model.body[0](states[1], 2))
        with_stem = model.states(x, iters=5, include_stem=True)
        assert len(with_stem) == 6
        torch.testing.assert_close(with_stem[0], model.stem(x))
        torch.testing.assert_close(with_stem[5], states[4])


def test_feedforward_and_bn_recurrent_iteration_limits():
    ff = build_model("maze", "feedforward", iters=2, width=8)
    with pytest.raises(ConfigError, match="fixed depth"):
        ff(small_input("mazes"), iters=3)
    bn = build_model("residual_bn", "recurrent", iters=2, width=8)
    assert bn.max_iters == 2
    bn(small_input("cifar10"), iters=1)  # fewer iterations: uses BN layers of iterations 1..n
    with pytest.raises(ConfigError, match="BatchNorm for 2 iterations"):
        bn(small_input("cifar10"), iters=3)


def test_models_cli_table_and_json(capsys):
    assert main(["models", "--family", "maze"]) == 0
    table = capsys.readouterr().out
    assert "5,941,008" in table and "632,592" in table
    assert main(["models", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert set(rows[0]) == {"family", "mode", "dataset", "effective_depth", "iters", "parameters"}
    by_key = {(r["family"], r["mode"], r["dataset"], r["effective_depth"]): r for r in rows}
    assert by_key[("residual", "feedforward", "cifar10", 15)]["parameters"] == 30_689_802
    assert by_key[("resnet18", "feedforward", "cifar10", 18)]["parameters"] == 11_173_962
    assert {r["family"] for r in rows} == set(list_models())
