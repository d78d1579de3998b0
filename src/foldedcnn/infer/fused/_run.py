"""FusedRunner: a FusedProgram's weights on the device and its kernel launches.

    forward_folded(x (G, f*C, H, W), any strides) -> logits (G, N) float32
    forward_images(images (B, C, H, W)-indexed view, uint8 or float, scale, shift) -> logits (ceil(B/f), N) float32

One launch of the feature kernel (all convs and pools) and one classifier launch per pair of Linear
layers (every zoo model has at most two: two launches per forward in all). The feature kernel is the one
specialised to the program (`_unrolled`) unless the tiling asks for the generic one (`_conv`: one compiled
kernel for every network). `calls_folded` / `calls_images` build a forward's launches without running them
(benchmarks/triton_sass.py compiles them for a GPU that is not here).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import triton

from ._conv import features_kernel
from ._linear import linear_kernel
from ._program import FusedProgram
from ._schedule import band_table, check_kernel_limits, choose_band_rows, op_table, scratch_half
from ._unrolled import unrolled_features_kernel

#: Widest hidden layer kept in registers between two fused Linear layers.
MAX_HIDDEN = 512
#: Elements every row of features and every scratch half starts on a multiple of: Triton specialises integer
#: arguments divisible by 16, which lets the unrolled kernel move 16-byte vectors (cp.async on sm_90).
ALIGN = 16


def _round_up(n: int, multiple: int = ALIGN) -> int:
    return -(-n // multiple) * multiple


@dataclass(frozen=True)
class Tiling:
    """Launch parameters. `scratch_budget`: elements of scratch per program (sets the band height unless
    `band_rows` is given); `programs`: persistent grid size (None: the programs resident at once on CUDA,
    2 in the interpreter); `unrolled`: the feature kernel specialised to the network (False: the generic one);
    `num_warps` of the feature kernel (None: the rule below).

    Register use of the generic feature kernel compiled for sm_90 (Triton 3.9, ptxas -v, fp16, BLOCK_P 64,
    BLOCK_K 32): BLOCK_N 32 / 4 warps 141 registers; BLOCK_N 64 / 4 warps and BLOCK_N 128 / 8 warps 255,
    no spills. Hence 4 warps (2 programs per SM) up to 64 channels, 8 warps (1 per SM) above; the unrolled
    kernel keeps that rule and needs fewer (48-156 registers, no spills:
    benchmarks/results/cpu-2core/triton-sass.md).
    """

    block_p: int = 64
    block_k: int = 32
    linear_block_m: int = 16
    linear_block_k: int = 64
    linear_block_n: int = 64
    scratch_budget: int = 32768
    band_rows: int | None = None
    programs: int | None = None
    unrolled: bool = True
    num_warps: int | None = None


@dataclass(frozen=True)
class KernelCall:
    """One kernel launch, built but not run: kernel[grid](*args, **constants, num_warps=num_warps) fills `out`."""

    kernel: triton.JITFunction
    grid: tuple[int, ...]
    args: tuple
    constants: dict
    num_warps: int
    out: torch.Tensor

    def launch(self) -> torch.Tensor:
        self.kernel[self.grid](*self.args, **self.constants, num_warps=self.num_warps)
        return self.out


def _run_all(calls: list[KernelCall]) -> torch.Tensor:
    for call in calls:
        out = call.launch()
    return out


INTERPRETER_TILING = Tiling(block_p=256, block_k=256, linear_block_k=256, linear_block_n=128, scratch_budget=1 << 30)


def _pow2(n: int, least: int = 16) -> int:
    return max(least, triton.next_power_of_2(int(n)))


class FusedRunner:
    """Runs `program` on `device` in `dtype` (weights cast once; activations in `dtype`, fp32 accumulation)."""

    def __init__(self, program: FusedProgram, device: torch.device, dtype: torch.dtype, tiling: Tiling) -> None:
        check_kernel_limits(program)
        self.program, self.device, self.dtype, self.tiling = program, device, dtype, tiling
        meta, weights, biases = op_table(program)
        # the kernel specialised to this program is generated once (its source is built from the op table)
        self.feature_kernel = unrolled_features_kernel(program, meta) if tiling.unrolled else features_kernel
        self.meta = meta.to(device)
        self.weights = weights.to(device, dtype)
        self.biases = biases.to(device)
        band_rows = tiling.band_rows or choose_band_rows(program, tiling.scratch_budget)
        self.bands = band_table(program, band_rows).to(device)
        self.half = _round_up(scratch_half(program, self.bands.cpu()))
        c, h, w = program.features[-1].out_shape
        self.feat_size = c * h * w
        self.feat_stride = _round_up(self.feat_size)
        # every op's input but the first is an earlier op's output: BLOCK_N covers all channel counts
        self.block_n = _pow2(max(op.out_shape[0] for op in program.features))
        self.num_warps = tiling.num_warps or (4 if self.block_n <= 64 else 8)
        if tiling.programs is not None:
            self.programs = tiling.programs
        elif device.type == "cuda":
            per_sm = 2 if self.num_warps == 4 else 1
            self.programs = per_sm * torch.cuda.get_device_properties(device).multi_processor_count
        else:
            self.programs = 2
        self.precision = "ieee" if dtype == torch.float32 else "tf32"
        self.linears = [(op.weight.t().contiguous().to(device, dtype), op.bias.to(device), op.relu)
                        for op in program.classifier]

    def feature_call(self, x: torch.Tensor, groups: int, raw: tuple[int, torch.Tensor, torch.Tensor] | None
                     ) -> KernelCall:
        """The feature kernel's launch for `groups` folded images of `x`: out (groups, feat_size), compute dtype."""
        n_bands, n_ops = self.bands.shape[:2]
        items = groups * n_bands
        programs = min(items, self.programs)
        buf = torch.empty(groups * self.feat_stride + programs * 2 * self.half, device=self.device, dtype=self.dtype)
        if raw is None:
            fold, scale, shift, n_images, image_ch = 1, self.biases, self.biases, groups, 1
        else:
            (fold, scale, shift), n_images, image_ch = raw, x.shape[0], x.shape[1]
        t = self.tiling
        constants = dict(RAW=raw is not None, FOLD=fold, IMAGE_CH=image_ch, BLOCK_P=t.block_p, PRECISION=self.precision)
        head = (x, *x.stride(), n_images, scale, shift, self.weights, self.biases)
        tail = (n_bands, items, self.feat_stride, groups * self.feat_stride, self.half)
        if t.unrolled:
            args = (*head, self.bands, buf, *tail)
        else:
            args = (*head, self.meta, self.bands, buf, n_ops, *tail)
            constants.update(BLOCK_K=t.block_k, BLOCK_N=self.block_n)
        features = buf[: groups * self.feat_stride].view(groups, self.feat_stride)[:, : self.feat_size]
        return KernelCall(self.feature_kernel, (programs,), args, constants, self.num_warps, features)

    def classifier_calls(self, x: torch.Tensor) -> Iterator[KernelCall]:
        """The Linear chain's launches on (M, K1): two layers per launch where the hidden width fits; the last
        call's out is (M, N) float32. Each call's input is the previous call's out (allocated, not yet computed)."""
        t, layers, i = self.tiling, self.linears, 0
        while i < len(layers):
            (w1, b1, relu1), two = layers[i], i + 1 < len(layers) and layers[i][0].shape[1] <= MAX_HIDDEN
            w2, b2, relu2 = layers[i + 1] if two else (w1, b1, False)
            i += 2 if two else 1
            n_out, last = (w2.shape[1] if two else w1.shape[1]), i == len(layers)
            split = two and last and not relu2  # fp32 atomics into the logits; no ReLU after the sum
            make = torch.zeros if split else torch.empty
            out = make(x.shape[0], n_out, device=self.device, dtype=torch.float32 if last else self.dtype)
            block_n1 = _pow2(w1.shape[1]) if two and not split else min(_pow2(w1.shape[1]), t.linear_block_n)
            grid = (triton.cdiv(x.shape[0], t.linear_block_m), triton.cdiv(w1.shape[1], block_n1))
            args = (x, x.stride(0), w1, b1, w2, b2, out, out.stride(0), x.shape[0], w1.shape[0], w1.shape[1],
                    w2.shape[1])
            constants = dict(RELU1=relu1, RELU2=relu2, TWO=two, SPLIT=split, BLOCK_M=t.linear_block_m,
                             BLOCK_K=t.linear_block_k, BLOCK_N1=block_n1, BLOCK_N2=min(_pow2(n_out), t.linear_block_n),
                             PRECISION=self.precision)
            yield KernelCall(linear_kernel, grid, args, constants, 4, out)
            x = out

    def calls_folded(self, x: torch.Tensor) -> list[KernelCall]:
        """Every launch of forward_folded(x), in order, built (buffers allocated) but not run."""
        features = self.feature_call(x, x.shape[0], None)
        return [features, *self.classifier_calls(features.out)]

    def calls_images(self, images: torch.Tensor, fold: int, scale: torch.Tensor, shift: torch.Tensor
                     ) -> list[KernelCall]:
        """Every launch of forward_images(...), in order, built (buffers allocated) but not run."""
        features = self.feature_call(images, -(-images.shape[0] // fold), (fold, scale, shift))
        return [features, *self.classifier_calls(features.out)]

    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """Folded, normalised inputs (G, f*C, H, W) in the compute dtype, any strides -> logits (G, N) float32."""
        return _run_all(self.calls_folded(x))

    def forward_images(self, images: torch.Tensor, fold: int, scale: torch.Tensor, shift: torch.Tensor
                       ) -> torch.Tensor:
        """Unfolded images, indexed (B, C, H, W) (e.g. a permuted (B, H, W, C) uint8 batch) -> logits (ceil(B/f), N).

        Normalised inside the first conv: x * scale[c] + shift[c] (float32 (C,) on the device); image j of group g is
        batch index g*f + j (channels [j*C, (j+1)*C)); the missing images of a last partial group are zeros.
        """
        return _run_all(self.calls_images(images, fold, scale, shift))
