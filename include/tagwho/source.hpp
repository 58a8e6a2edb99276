// Sources: turns the user's PATHs into the files to analyse. A PATH is a file, a folder (walked
// recursively), the root of a Windows installation (mounted volume: only the places drivers live), or a
// disk image (raw/dd, E01, VHD, VHDX, VMDK; read with The Sleuth Kit, never mounted, never written).
// Each file comes with a display path, its size and mtime, the service that loads it (from the offline
// SYSTEM hive), and a way to get its bytes. The index and the CLI both start here.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "tagwho/byte_view.hpp"
#include "tagwho/result.hpp"
#include "tagwho/scan.hpp"
#include "tagwho/service.hpp"

namespace tagwho {

// Files inside disk images are read into memory; larger ones are refused with a one-line error.
constexpr uint64_t kMaxImageFileSize = 256ull << 20;

// The bytes of one input file: a read-only mapping (files on a local file system) or a buffer (files read
// out of a disk image).
class FileBytes {
 public:
  explicit FileBytes(MappedFile mapped) : storage_(std::move(mapped)) {}
  explicit FileBytes(std::vector<uint8_t> buffer) : storage_(std::move(buffer)) {}
  ByteView view() const;
  // A pass over every byte (MappedFile::windows()).
  WindowReader windows() const;
  // MappedFile::read_failure(): the error when reads of the file returned zeros (it shrank, or a page
  // could not be read); what was learnt from it is not evidence. nullopt for a buffer.
  std::optional<std::string> read_failure() const;

 private:
  std::variant<MappedFile, std::vector<uint8_t>> storage_;
};

class SourceReader;  // how to read a file of one source (a folder, an image's volume)

struct SourceFile {
  std::string path;             // display path: "/mnt/win/Windows/...", "disk.vhdx:/Windows/...", "disk.img:p2:/..."
  bool explicit_path = false;   // named on the command line: a non-PE file is an error, not a skip
  uint64_t size = 0;
  int64_t mtime = 0;            // seconds since the epoch (0 when unknown)
  std::optional<ServiceInfo> service;  // the service whose ImagePath is this file
  std::string root;             // display path of the Windows root holding the file ("" when none)
  std::shared_ptr<const SourceReader> reader;
  std::string host_path;        // files on a local file system
  uint64_t address = 0;         // files in an image: the metadata address (MFT entry)

  // The whole file. For files in images, only the first bytes when they are not "MZ" (not a PE: the rest is
  // never needed), and an error above kMaxImageFileSize.
  Result<FileBytes> read() const;
};

struct SourceList {
  std::vector<SourceFile> files;             // in PATH order; inside a folder or a Windows root sorted by path
  std::vector<MissingService> missing;       // driver services whose file is missing, by root then name
  std::vector<WalkProblem> problems;         // one per path, image or file that could not be read
};

// Opens every PATH. Explicit files starting with "MZ" are PE files; other explicit files with a disk image
// signature (or an image extension: .raw .dd .img .001 .e01 .vhd .vhdx .vmdk) are opened as images; the
// rest stay PE candidates (the scanner then calls them "not a PE file"). Never fails as a whole.
SourceList open_sources(const std::vector<std::string>& paths);

// Analyses the files on `threads` threads (results in input order), attaching each file's service.
FileResult analyse_source(const Scanner& scanner, const SourceFile& file);
// The same on the file's bytes already read (or the error reading them gave).
FileResult analyse_source(const Scanner& scanner, const SourceFile& file, const Result<FileBytes>& bytes);
std::vector<FileResult> scan_sources(const Scanner& scanner, const std::vector<SourceFile>& files, unsigned threads);
// The same, each result handed to deliver(index, result) in input order as soon as the files before it are
// done, and then freed: memory stays bounded whatever the number of files (a bounded window of results
// waits for an earlier file; large files are analysed one at a time). deliver runs on one thread at a time;
// an exception it throws stops the scan and is rethrown here.
void scan_sources_in_order(const Scanner& scanner, const std::vector<SourceFile>& files, unsigned threads,
                           const std::function<void(size_t, FileResult&)>& deliver);

// The disk image formats this build of The Sleuth Kit reads ("raw", "ewf", "vhd", "vmdk"...).
std::vector<std::string> supported_image_formats();

}  // namespace tagwho
