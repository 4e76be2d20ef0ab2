// NumPy's array files: .npy (one array) and .npz (a zip archive of .npy
// files, stored or deflated, as np.savez and np.savez_compressed write them).
#pragma once

#include "runtime/Tensor.h"

#include <string>
#include <vector>

namespace nnc::runtime {

/// An array of a .npy file as a tensor of dtype `want`: f32 from any float
/// or integer type; i64 from integer and bool types, and from floats that
/// hold whole numbers only. Little- and big-endian, C order (Fortran order
/// is refused). `what` names the array in messages ("'x.npy'"). Throws Error
/// on anything malformed, truncated or too large.
Tensor parseNpy(const std::string &bytes, DType want, const std::string &what);

/// The members of a .npz archive held in `bytes`: names without ".npy" and
/// their uncompressed contents. `what` names the archive in messages.
std::vector<std::pair<std::string, std::string>> parseNpz(const std::string &bytes, const std::string &what);

/// parseNpy of the file at `path`.
Tensor loadNpy(const std::string &path, DType want);

/// The arrays of the .npz file at `path`, by name.
std::vector<std::pair<std::string, std::string>> loadNpz(const std::string &path);

/// `t` as a .npy file (format 1.0, little-endian '<f4' or '<i8', C order),
/// as np.save writes it (NpyWrite.cpp).
std::string encodeNpy(const Tensor &t);

/// A .npz archive (stored, as np.savez writes) of `arrays`: each name's
/// .npy bytes as member "<name>.npy". Throws Error past the 4 GiB a zip
/// without zip64 records can hold.
std::string encodeNpz(const std::vector<std::pair<std::string, std::string>> &arrays);

} // namespace nnc::runtime
