"""Inference helpers shared by predict and eval: tiling with seamless blending, scale-aware modes."""
