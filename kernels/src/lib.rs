//! ember-kernels: compute on quantized blocks.
