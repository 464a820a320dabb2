// \brief Structure-aware edits of an HDF5 file for the fuzz targets of dfcl's HDF5 readers (dataset, scores file).
//
// Fuzzing HDF5's own binary format is HDF5's job (upstream fuzzes it); what dfcl owns is what it does with a file
// HDF5 opens fine: datasets of another type, rank or shape, missing or extra datasets, attributes of the wrong type,
// length or value, and values (NaN, negative arms, huge numbers) in the data. So a target writes a valid file, lets
// the fuzz input pick a sequence of such edits through the HDF5 API, and hands the result to the reader.
#pragma once
#include <string>  // for std::string
#include <vector>  // for std::vector

#include "fuzz.h"  // for Bytes

namespace dfcl::fuzz {

/// Applies edits decoded from `in` (until it runs out, at most 16) to the file at `path`. `datasets` and
/// `attributes` are the names the edits choose from (a name outside the file creates it). Never throws: an edit
/// HDF5 refuses is skipped.
void mutate_h5(const std::string& path, Bytes& in, const std::vector<std::string>& datasets,
               const std::vector<std::string>& attributes);

}  // namespace dfcl::fuzz
