"""FusedRunner: a FusedProgram's weights on the device and its kernel launches.

    forward_folded(x (G, f*C, H, W), any strides) -> logits (G, N) float32
    forward_images(images (B, C, H, W)-indexed view, uint8 or float, scale, shift) -> logits (ceil(B/f), N) float32

One launch of the feature kernel (all convs and pools) and one classifier launch per pair of Linear
layers (every zoo model has at most two: two launches per forward in all).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton

from ._conv import features_kernel
from ._linear import linear_kernel
from ._program import FusedProgram
from ._schedule import band_table, check_kernel_limits, choose_band_rows, op_table, scratch_half

#: Widest hidden layer kept in registers between two fused Linear layers.
MAX_HIDDEN = 512


@dataclass(frozen=True)
class Tiling:
    """Launch parameters. `scratch_budget`: elements of scratch per program (sets the band height unless
    `band_rows` is given); `programs`: persistent grid size (None: the programs resident at once on CUDA,
    2 in the interpreter).

    Register use of the feature kernel compiled for sm_90 (Triton 3.9, ptxas -v, fp16, BLOCK_P 64,
    BLOCK_K 32): BLOCK_N 32 / 4 warps 141 registers; BLOCK_N 64 / 4 warps and BLOCK_N 128 / 8 warps 255,
    no spills. Hence 4 warps (2 programs per SM) up to 64 channels, 8 warps (1 per SM) above.
    """

    block_p: int = 64
    block_k: int = 32
    linear_block_m: int = 16
    linear_block_k: int = 64
    linear_block_n: int = 64
    scratch_budget: int = 32768
    band_rows: int | None = None
    programs: int | None = None


INTERPRETER_TILING = Tiling(block_p=256, block_k=256, linear_block_k=256, linear_block_n=128, scratch_budget=1 << 30)


def _pow2(n: int, least: int = 16) -> int:
    return max(least, triton.next_power_of_2(int(n)))


class FusedRunner:
    """Runs `program` on `device` in `dtype` (weights cast once; activations in `dtype`, fp32 accumulation)."""

    def __init__(self, program: FusedProgram, device: torch.device, dtype: torch.dtype, tiling: Tiling) -> None:
        check_kernel_limits(program)
        self.program, self.device, self.dtype, self.tiling = program, device, dtype, tiling
        meta, weights, biases = op_table(program)
        self.meta = meta.to(device)
        self.weights = weights.to(device, dtype)
        self.biases = biases.to(device)
        band_rows = tiling.band_rows or choose_band_rows(program, tiling.scratch_budget)
        self.bands = band_table(program, band_rows).to(device)
        self.half = scratch_half(program, self.bands.cpu())
        c, h, w = program.features[-1].out_shape
        self.feat_size = c * h * w
        # every op's input but the first is an earlier op's output: BLOCK_N covers all channel counts
        self.block_n = _pow2(max(op.out_shape[0] for op in program.features))
        self.num_warps = 4 if self.block_n <= 64 else 8
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

    def _features(self, x: torch.Tensor, groups: int, raw: tuple[int, torch.Tensor, torch.Tensor] | None
                  ) -> torch.Tensor:
        """Run the feature kernel on `groups` folded images -> (groups, feat_size) in the compute dtype."""
        n_bands, n_ops = self.bands.shape[:2]
        items = groups * n_bands
        programs = min(items, self.programs)
        buf = torch.empty(groups * self.feat_size + programs * 2 * self.half, device=self.device, dtype=self.dtype)
        if raw is None:
            fold, scale, shift, n_images, image_ch = 1, self.biases, self.biases, groups, 1
        else:
            (fold, scale, shift), n_images, image_ch = raw, x.shape[0], x.shape[1]
        t = self.tiling
        features_kernel[(programs,)](
            x, *x.stride(), n_images, scale, shift, self.weights, self.biases, self.meta, self.bands, buf,
            n_ops, n_bands, items, self.feat_size, groups * self.feat_size, self.half,
            RAW=raw is not None, FOLD=fold, IMAGE_CH=image_ch, BLOCK_P=t.block_p, BLOCK_K=t.block_k,
            BLOCK_N=self.block_n, PRECISION=self.precision, num_warps=self.num_warps)
        return buf[: groups * self.feat_size].view(groups, self.feat_size)

    def _classifier(self, x: torch.Tensor) -> torch.Tensor:
        """(M, K1) -> (M, N) float32 through the Linear chain, two layers per launch where the hidden width fits."""
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
            linear_kernel[grid](
                x, x.stride(0), w1, b1, w2, b2, out, out.stride(0), x.shape[0], w1.shape[0], w1.shape[1],
                w2.shape[1], RELU1=relu1, RELU2=relu2, TWO=two, SPLIT=split, BLOCK_M=t.linear_block_m,
                BLOCK_K=t.linear_block_k, BLOCK_N1=block_n1, BLOCK_N2=min(_pow2(n_out), t.linear_block_n),
                PRECISION=self.precision)
            x = out
        return x

    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """Folded, normalised inputs (G, f*C, H, W) in the compute dtype, any strides -> logits (G, N) float32."""
        return self._classifier(self._features(x, x.shape[0], None))

    def forward_images(self, images: torch.Tensor, fold: int, scale: torch.Tensor, shift: torch.Tensor
                       ) -> torch.Tensor:
        """Unfolded images, indexed (B, C, H, W) (e.g. a permuted (B, H, W, C) uint8 batch) -> logits (ceil(B/f), N).

        Normalised inside the first conv: x * scale[c] + shift[c] (float32 (C,) on the device); image j of group g is
        batch index g*f + j (channels [j*C, (j+1)*C)); the missing images of a last partial group are zeros.
        """
        groups = -(-images.shape[0] // fold)
        return self._classifier(self._features(images, groups, (fold, scale, shift)))
