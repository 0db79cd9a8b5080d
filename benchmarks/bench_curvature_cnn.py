"""Benchmark: curvature of a small CNN with fl.curvature, in units of one gradient.

    python benchmarks/bench_curvature_cnn.py              # N = 512, float32
    python benchmarks/bench_curvature_cnn.py --n 128      # quicker
    python benchmarks/bench_curvature_cnn.py --float64    # the same in float64

The convolutional workload of issue 12: 28 x 28 single-channel inputs through
Conv(1 -> 8, 3x3) - tanh - Conv(8 -> 16, 3x3, stride 2) - tanh - flatten (16 x 12 x 12) -
Linear(2,304 -> 10), no padding, a softmax cross-entropy head, seeded random inputs, labels and
weights (scaled by 1/sqrt(fan-in)). fisherlab's side is a plain JAX function of a params dict
(``jax.lax.conv_general_dilated`` with ``NCHW``/``OIHW``, the layouts of ``torch.nn.Conv2d``),
timed as in ``bench_curvature.py`` (one warm-up call, then the median of ``--repeats``
interleaved rounds) in units of one jit-compiled JAX gradient of the mean loss:

- ``operator mv (fisher)``: one product of the exact Fisher operator (built once);
- ``diagonal, exact (ggn)``: building ``structure="diagonal"`` with ``kind="ggn"`` and reading it;
- ``KFAC`` with one sampled label per input (``kind="mc_fisher"``) and exact type-2
  (``kind="fisher"``): building ``structure="kfac"``; with ``kfac_approx="expand"`` where
  ``fl.curvature`` takes that argument. Where fisherlab cannot factor a convolution it warns and
  keeps that layer's exact diagonal: the script then says "conv layers fell back to the
  diagonal" and compares the Kronecker factors of the dense layer only.

PyTorch anchors (``bench_curvature.TorchAnchors``), on the same weights and data: BackPACK's
``DiagGGNExact``, ``KFAC`` (one sample) and ``KFLR``; curvlinops' ``GGNLinearOperator`` (one
product) and ``KFACLinearOperator(kfac_approx="expand")`` (MC with one sample, and type-2), in
units of one PyTorch gradient. Timings are never asserted.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from bench_curvature import (
    DIAG_GGN,
    FL,
    KFAC_MC,
    KFAC_T2,
    MV,
    UNIT,
    Layout,
    _median,
    from_torch_layout,
    max_rel,
    parse_args,
    print_table,
    to_torch_layout,
    torch_anchors,
    torch_missing,
    write_json,
)

KFAC_WARNING = "structure='kfac'"  # how fisherlab's warning about layers it cannot factor starts
CONV = [0, 1, 2, 3]  # the conv layers' parameters in the torch layout (weight, bias, weight, bias)
DENSE = [4, 5]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__, 512)
    import jax
    import jax.numpy as jnp

    import fisherlab as fl

    dtype = jnp.float64 if args.float64 else jnp.float32
    rng = np.random.default_rng(0)

    def init(*shape: int, fan_in: int) -> Any:
        return jnp.asarray(rng.normal(size=shape) / np.sqrt(fan_in), dtype)

    x = jnp.asarray(rng.normal(size=(args.n, 1, 28, 28)), dtype)
    y = rng.integers(0, 10, size=args.n).astype(np.int32)
    params = {
        "c1": {"w": init(8, 1, 3, 3, fan_in=9), "b": init(8, fan_in=9)},
        "c2": {"w": init(16, 8, 3, 3, fan_in=72), "b": init(16, fan_in=72)},
        "fc": {"w": init(16 * 12 * 12, 10, fan_in=16 * 12 * 12), "b": init(10, fan_in=16 * 12 * 12)},
    }
    layout: Layout = [
        (("c1", "w"), False), (("c1", "b"), False), (("c2", "w"), False), (("c2", "b"), False),
        (("fc", "w"), True), (("fc", "b"), False),
    ]  # fmt: skip

    def conv(a: Any, layer: Any, stride: int) -> Any:
        out = jax.lax.conv_general_dilated(
            a, layer["w"], (stride, stride), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW")
        )
        return out + layer["b"][None, :, None, None]

    def net(th: Any, xx: Any) -> Any:
        h = jnp.tanh(conv(jnp.tanh(conv(xx, th["c1"], 1)), th["c2"], 2))
        return h.reshape(h.shape[0], -1) @ th["fc"]["w"] + th["fc"]["b"]

    def loss(th: Any, xx: Any, yy: Any) -> Any:
        return -jnp.mean(jax.nn.log_softmax(net(th, xx))[jnp.arange(yy.shape[0]), yy])

    grad = jax.jit(jax.grad(loss))
    model = fl.Model(lambda th, xx: fl.dist.Categorical(logits=net(th, xx)))
    kfac_kw = {"kfac_approx": "expand"} if "kfac_approx" in inspect.signature(fl.curvature).parameters else {}

    def kfac(kind: str, reduction: str = "sum") -> Any:
        return fl.curvature(model, params, y, x, kind=kind, structure="kfac", reduction=reduction, **kfac_kw)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kfac("fisher")
    fell_back = [str(w.message) for w in caught if str(w.message).startswith(KFAC_WARNING)]
    warnings.filterwarnings("ignore", message=KFAC_WARNING, category=UserWarning)
    op = fl.curvature(model, params, y, x, kind="fisher")
    v = jax.tree_util.tree_map(jnp.ones_like, params)
    cands: dict[Hashable, Callable[[], Any]] = {
        (FL, UNIT): lambda: grad(params, x, y),
        (FL, MV): lambda: op.mv(v),
        (FL, DIAG_GGN): lambda: fl.curvature(
            model, params, y, x, kind="ggn", structure="diagonal"
        ).diagonal(),
        (FL, KFAC_MC): lambda: kfac("mc_fisher").trace(),
        (FL, KFAC_T2): lambda: kfac("fisher").trace(),
    }
    quantities = [q for _, q in cands if q != UNIT]
    p = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(params))
    print(
        f"CNN 1x28x28 - conv 8 3x3 - tanh - conv 16 3x3 /2 - tanh - linear 10, softmax cross-entropy, "
        f"N = {args.n}, P = {p:,}, {'float64' if args.float64 else 'float32'}; "
        f"medians of {args.repeats} interleaved rounds"
    )
    how = f"fl.curvature(..., structure='kfac'{', kfac_approx=' + repr('expand') if kfac_kw else ''})"
    if fell_back:
        print(f"fisherlab K-FAC: conv layers fell back to the diagonal ({how} warned: {fell_back[0]})")
    else:
        print(f"fisherlab K-FAC: Kronecker factors for every layer ({how})")
    skipped = "--no-torch" if args.no_torch else torch_missing()
    anchors = None
    if skipped is None:
        import torch

        nn = torch.nn
        tnet = nn.Sequential(
            nn.Conv2d(1, 8, 3), nn.Tanh(), nn.Conv2d(8, 16, 3, stride=2), nn.Tanh(), nn.Flatten(),
            nn.Linear(16 * 12 * 12, 10),
        )  # fmt: skip
        anchors = torch_anchors(tnet, params, layout, x, y, kfac_approx="expand")
        cands.update(anchors.candidates(quantities))

    load0 = os.getloadavg()[0]
    med = _median(cands, args.repeats)
    load1 = os.getloadavg()[0]
    print(f"load average {load0:.2f} at start, {load1:.2f} at end")
    print_table(med, quantities, torch_skipped=skipped)

    rel: dict[str, float] = {}
    if anchors is not None:

        def mean(kind: str, structure: str) -> Any:
            return fl.curvature(model, params, y, x, kind=kind, structure=structure, reduction="mean")

        def pick(arrays: list[np.ndarray], which: list[int]) -> list[np.ndarray]:
            return [arrays[i] for i in which]

        tv = [np.asarray(rng.normal(size=np.shape(a)), dtype) for a in to_torch_layout(params, layout)]
        v_fl = from_torch_layout(tv, layout)
        tv_t = [anchors.x.new_tensor(a) for a in tv]
        rel["exact diagonal (ggn) vs BackPACK DiagGGNExact"] = max_rel(
            to_torch_layout(mean("ggn", "diagonal").diagonal(), layout),
            anchors.numpy(anchors.backpack("DiagGGNExact")),
        )
        rel["operator mv (fisher) vs curvlinops GGN mv"] = max_rel(
            to_torch_layout(mean("fisher", "operator").mv(v_fl), layout), anchors.numpy(anchors.ggn_mv(tv_t))
        )
        exact = kfac("fisher", reduction="mean")
        ours = to_torch_layout(exact.diagonal(), layout)
        kflr = anchors.kflr_diagonal()
        ours_mv = to_torch_layout(exact.mv(v_fl), layout)
        theirs_mv = anchors.numpy(anchors.kfac("type-2") @ tv_t)
        # K-FAC is block-diagonal over layers in all three, so each layer compares on its own.
        # BackPACK's KFLR of a convolution is another approximation (A summed over the output
        # positions, G from the gradients summed over them: the bias's exact GGN), so only its
        # dense layer is the same number; curvlinops' expand is fisherlab's.
        rel["KFAC type-2 diagonal vs BackPACK KFLR, dense layer"] = max_rel(
            pick(ours, DENSE), pick(kflr, DENSE)
        )
        for name, which in [("dense layer", DENSE)] + ([] if fell_back else [("conv layers", CONV)]):
            rel[f"KFAC type-2 mv vs curvlinops KFAC type-2 expand, {name}"] = max_rel(
                pick(ours_mv, which), pick(theirs_mv, which)
            )
    for name, r in rel.items():
        print(f"{name}: max relative difference {r:.1e}")
    write_json(args.json, med, quantities, skipped, conv_kfac_fell_back=bool(fell_back), agreement=rel)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
