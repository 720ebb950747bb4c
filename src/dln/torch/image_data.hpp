// Labelled image data sets as libtorch tensors: Fashion-MNIST from Debian's dataset-fashion-mnist
// (gzip IDX files, io/idx.hpp), scaled as in TensorFlow's MNIST tutorial.
#pragma once

#include <torch/types.h>

#include <string>

namespace dln::nonlinear {

struct ImageData {
  torch::Tensor images;  // count x 1 x rows x cols, float32, (pixel - 127.5) / 255
  torch::Tensor labels;  // count, int64
  std::int64_t count() const { return labels.size(0); }
};

// The directory of train-images-idx3-ubyte.gz etc.: `dir` when given, else $DLN_FASHION_MNIST_DIR,
// else /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).
std::string fashion_mnist_dir(const std::string& dir);

// `split` is "train" (60,000 images) or "t10k" (10,000). Throws dln::Error naming the file when
// one is missing ("... (install Debian's dataset-fashion-mnist)") or malformed.
ImageData load_fashion_mnist(const std::string& dir, const std::string& split);

}  // namespace dln::nonlinear
