#include "dln/torch/image_data.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>

#include "dln/core/types.hpp"
#include "dln/io/idx.hpp"

namespace dln::nonlinear {

std::string fashion_mnist_dir(const std::string& dir) {
  if (!dir.empty()) return dir;
  if (const char* env = std::getenv("DLN_FASHION_MNIST_DIR"); env && *env) return env;
  return DLN_FASHION_MNIST_DIR;
}

ImageData load_fashion_mnist(const std::string& dir, const std::string& split) {
  if (split != "train" && split != "t10k")
    throw Error(fmt::format("fashion-mnist: unknown split '{}' (expected train or t10k)", split));
  const std::string base = fashion_mnist_dir(dir);
  const std::string images = fmt::format("{}/{}-images-idx3-ubyte.gz", base, split);
  const std::string labels = fmt::format("{}/{}-labels-idx1-ubyte.gz", base, split);
  for (const auto& f : {images, labels})
    if (!std::filesystem::exists(f))
      throw Error(
          fmt::format("{}: no such file (install Debian's dataset-fashion-mnist, or set "
                      "$DLN_FASHION_MNIST_DIR)",
                      f));
  io::LabelledImages d = io::read_labelled_images(images, labels, 10);
  const auto n = static_cast<std::int64_t>(d.count);
  const auto rows = static_cast<std::int64_t>(d.rows), cols = static_cast<std::int64_t>(d.cols);
  ImageData out;
  out.images = torch::from_blob(d.images.data.data(), {n, 1, rows, cols}, torch::kUInt8)
                   .to(torch::kFloat32)
                   .sub_(127.5)
                   .div_(255.0);
  out.labels = torch::from_blob(d.labels.data.data(), {n}, torch::kUInt8).to(torch::kInt64);
  return out;
}

}  // namespace dln::nonlinear
