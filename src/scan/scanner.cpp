#include <algorithm>
#include <atomic>
#include <iterator>
#include <map>
#include <optional>
#include <thread>
#include <tuple>

#include "core/budget.hpp"
#include "scan/analyse.hpp"
#include "scan/classify.hpp"
#include "tagwho/code_analysis.hpp"
#include "tagwho/pe_image.hpp"
#include "tagwho/scan.hpp"
#include "tagwho/tag_api.hpp"

namespace tagwho {
namespace {

// A total order, strongest first: equal items are identical, so the order never depends on the input's.
bool stronger_first(const Evidence& a, const Evidence& b) {
  if (a.kind != b.kind) return a.kind > b.kind;
  if (a.rva != b.rva) return a.rva < b.rva;
  if (a.file_offset.value_or(0) != b.file_offset.value_or(0)) return a.file_offset.value_or(0) < b.file_offset.value_or(0);
  return std::tie(a.tag_rva, a.api, a.form, a.detail, a.chain, a.section, a.pool_type, a.pool_flags, a.size,
                  a.protected_pool, a.negative_displacement) <
         std::tie(b.tag_rva, b.api, b.form, b.detail, b.chain, b.section, b.pool_type, b.pool_flags, b.size,
                  b.protected_pool, b.negative_displacement);
}

// Call-site evidence starts at an import of a tag-taking API (wrappers derive from those too): an image
// without one cannot have any, and its code need not be decoded.
bool imports_tag_api(const PeImage& image) {
  return std::any_of(image.imports().begin(), image.imports().end(),
                     [](const ImportSlot& slot) { return starts_tag_analysis(slot.name); });
}

// Whether the tags include 'None', which ExAllocatePool implies with no bytes at all.
bool asks_for_none(const std::vector<Tag>& tags) {
  static const Tag kNone = *Tag::parse("None");
  return std::find(tags.begin(), tags.end(), kNone) != tags.end();
}

// The search prefilter. Call-site analysis recovers a tag from constants in the file: an immediate (its
// bytes), a constant in data (its bytes), an ARM64 MOVZ/MOVK pair (or one half of it, when a compiler
// derives the constant from another that shares a half), or a branchless choice whose other constant is
// nearby or arbitrary (LiteralMatcher::count_prefilter). A file with none of these for any requested tag
// cannot yield call evidence for it, so its code is not decoded. 'None' is the exception: ExAllocatePool
// implies it with no bytes at all. MOVZ/MOVK words count in ARM64 images only (elsewhere they are bytes
// that happen to look like one, and classification drops them too). This decides from the hits; when it
// says no, the scan's prefilter_hint (count_prefilter's answer, decided in the same pass) has the last word.
bool may_hold_call_evidence(const std::vector<LiteralHit>& hits, const std::vector<Tag>& tags, Machine machine) {
  if (asks_for_none(tags)) return true;
  return std::any_of(hits.begin(), hits.end(), [&](const LiteralHit& hit) {
    return hit.encoding == LiteralEncoding::bytes || machine == Machine::arm64;
  });
}

// The file ranges of the image's sections, code and data apart (see PrefilterPlaces).
PrefilterPlaces prefilter_places(const PeImage& image) {
  PrefilterPlaces places;
  places.x86_code = image.machine() == Machine::x86 || image.machine() == Machine::x64;
  for (const Section& section : image.sections()) {
    if (section.raw_size == 0) continue;
    const std::pair<uint64_t, uint64_t> range{section.raw_offset, uint64_t{section.raw_offset} + section.raw_size};
    (section.is_code() ? places.code : places.data).push_back(range);
  }
  return places;
}

bool is_requested(const std::vector<Tag>& tags, Tag tag) {
  Tag plain = tag.without_protected_bit();
  return std::find(tags.begin(), tags.end(), plain) != tags.end();
}

}  // namespace

// Groups evidence by tag (the protected bit is not part of a tag's identity: poolmon strips it). Tags come
// out in the order of their characters, as a reader expects ("PuCx" before "PuLn"): the byte-swapped value.
std::vector<Finding> group_by_tag(std::vector<Evidence> evidence) {
  std::map<uint32_t, Finding> by_tag;
  // Each finding's vector sized exactly first: a large driver's evidence is hundreds of MB in vectors grown
  // by doubling, while the whole input is still held.
  std::map<uint32_t, size_t> counts;
  for (const Evidence& item : evidence) ++counts[__builtin_bswap32(item.tag.without_protected_bit().value)];
  for (const auto& [key, count] : counts) by_tag[key].evidence.reserve(count);
  // Taken from the back, so that the input's emptied tail goes back to the system as the findings fill:
  // otherwise a large driver's evidence is held twice at the end (a 34 MB x86 driver's 320,000 call sites:
  // 70 MB more). The order taken in does not matter, as each finding is sorted by a total order.
  constexpr size_t kDiscardEvery = size_t{1} << 12;  // items: about 1 MB
  for (size_t taken = 1; !evidence.empty(); ++taken) {
    Evidence& item = evidence.back();
    Tag tag = item.tag.without_protected_bit();
    Finding& finding = by_tag[__builtin_bswap32(tag.value)];
    finding.tag = tag;
    finding.best = std::max(finding.best, item.kind);
    finding.evidence.push_back(std::move(item));
    evidence.pop_back();
    if (taken % kDiscardEvery == 0)
      budget::discard_pages(evidence.data() + evidence.size(), evidence.data() + evidence.capacity());
  }
  std::vector<Finding> findings;
  findings.reserve(by_tag.size());
  for (auto& [value, finding] : by_tag) {
    std::sort(finding.evidence.begin(), finding.evidence.end(), stronger_first);
    findings.push_back(std::move(finding));
  }
  return findings;
}

std::vector<Evidence> classify_per_tag(const std::vector<LiteralHit>& hits, const std::vector<Tag>& tags,
                                       const PeImage* image, const std::vector<Evidence>& calls,
                                       const ImmediateUses* known_uses) {
  // The hits by tag index, each tag's in their order (a counting sort: an index build classifies millions
  // of hits of thousands of tags per file, which a map of vectors spent a fifth of this function on). Over
  // the indexes the hits have, [lo, hi): an index build's matcher has tens of thousands of tags, and asks
  // about a group of them at a time.
  size_t lo = hits.empty() ? 0 : SIZE_MAX, hi = 0;
  for (const LiteralHit& hit : hits) {
    lo = std::min(lo, hit.tag_index);
    hi = std::max(hi, hit.tag_index + 1);
  }
  std::vector<size_t> first(hi - lo + 1, 0);  // tag index i: its hits are by_tag[first[i-lo], first[i-lo+1])
  for (const LiteralHit& hit : hits) ++first[hit.tag_index - lo + 1];
  for (size_t i = 0; i + 1 < first.size(); ++i) first[i + 1] += first[i];
  std::vector<LiteralHit> by_tag(hits.size());
  {
    std::vector<size_t> next(first.begin(), first.end() - 1);
    for (const LiteralHit& hit : hits) by_tag[next[hit.tag_index - lo]++] = hit;
  }
  std::optional<ImmediateUses> own_uses;
  if (!known_uses) own_uses.emplace(hits, image);  // once for the file, not once per tag
  const ImmediateUses& uses = known_uses ? *known_uses : *own_uses;
  // The instructions the call evidence took each tag from (only of tags with hits), as (tag, rva), sorted.
  std::vector<uint32_t> hit_tags;
  for (size_t i = lo; i < hi; ++i)
    if (first[i - lo + 1] > first[i - lo]) hit_tags.push_back(tags[i].without_protected_bit().value);
  std::sort(hit_tags.begin(), hit_tags.end());
  std::vector<std::pair<uint32_t, uint32_t>> call_rvas;
  for (const Evidence& call : calls) {
    if (call.kind != Confidence::call && call.kind != Confidence::wrapper) continue;
    const uint32_t tag = call.tag.without_protected_bit().value;
    if (std::binary_search(hit_tags.begin(), hit_tags.end(), tag)) call_rvas.emplace_back(tag, call.tag_rva);
  }
  std::sort(call_rvas.begin(), call_rvas.end());
  call_rvas.erase(std::unique(call_rvas.begin(), call_rvas.end()), call_rvas.end());
  std::vector<uint32_t> rvas(call_rvas.size());
  for (size_t i = 0; i < call_rvas.size(); ++i) rvas[i] = call_rvas[i].second;
  std::vector<Evidence> evidence;
  for (size_t i = lo; i < hi; ++i) {
    const size_t begin = first[i - lo], end = first[i - lo + 1];
    if (begin == end) continue;
    const uint32_t tag = tags[i].without_protected_bit().value;
    const auto calls_from = std::lower_bound(call_rvas.begin(), call_rvas.end(), std::make_pair(tag, uint32_t{0}));
    const auto calls_to = std::upper_bound(calls_from, call_rvas.end(), std::make_pair(tag, UINT32_MAX));
    const std::span<const uint32_t> tag_call_rvas(rvas.data() + (calls_from - call_rvas.begin()),
                                                  static_cast<size_t>(calls_to - calls_from));
    const std::span<const LiteralHit> tag_hits(by_tag.data() + begin, end - begin);
    std::vector<Evidence> literals = classify_literal_hits_beside(tag_hits, tags, image, tag_call_rvas, &uses);
    std::move(literals.begin(), literals.end(), std::back_inserter(evidence));
  }
  return evidence;
}

namespace {

// analyse_file_bytes without its limits (which stop it by throwing budget::Exceeded); fills `result` as it
// goes, so what was learnt before a stop (machine, version) stays.
void analyse_within_budget(FileResult& result, ByteView bytes, WindowReader& windows, bool all_calls,
                           const std::vector<Tag>& tags, const LiteralMatcher* matcher, bool prefilter) {
  DriverReport& report = result.report;
  // Only the MZ signature decides whether a file is meant to be a PE: a damaged header after it is an
  // error worth reporting, not a reason to skip the file.
  if (bytes.u16(0) != uint16_t{0x5a4d}) {
    result.not_pe = true;
    return;
  }
  budget::charge(bytes.size());  // the caller holds the file's bytes (read into memory) while it is analysed

  auto image = PeImage::load(bytes);
  const PeImage* pe = image ? &*image : nullptr;
  const CodeAnalyser* analyser = pe ? analyser_for(pe->machine()) : nullptr;
  const bool code_to_analyse = analyser && imports_tag_api(*pe);
  // A search the prefilter decides for (else every image with a tag-taking import is analysed).
  const bool prefiltering = matcher && !all_calls && prefilter && matcher->has_prefilter();
  // The prefilter's second look (count_prefilter), in the same pass over the bytes as the hits: wanted only
  // of an image whose code could be analysed (a user-mode DLL imports no tag-taking API), and only while no
  // hit of a tag's bytes is found.
  std::optional<PrefilterPlaces> hint_places;
  if (prefiltering && code_to_analyse && !asks_for_none(tags)) hint_places = prefilter_places(*pe);
  // Literal hits: the search prefilter decides from them whether the code is worth decoding. MOVZ/MOVK words
  // are evidence in ARM64 images only (classify_literal_hits drops them elsewhere): not looked for elsewhere.
  std::optional<Result<LiteralMatcher::Scan>> hits;
  if (matcher) {
    std::unique_ptr<LiteralMatcher::Scratch> scratch = matcher->make_scratch();
    const bool arm64_words = pe && pe->machine() == Machine::arm64;
    hits = scratch ? matcher->scan(windows, *scratch, arm64_words, hint_places ? &*hint_places : nullptr)
                   : Result<LiteralMatcher::Scan>(Error{"out of memory"});
  }
  if (windows.failure()) {  // (the bytes the analysis would read are not the file's either)
    report.errors.push_back(*windows.failure());
    return;
  }
  // (Asked only without a hit of a tag's bytes: then the scan decided it.)
  const auto prefilter_hint = [&] { return (*hits)->prefilter_hint.value_or(true); };
  const bool prefiltered = prefiltering && hits->ok();
  const auto analyse_code = [&] {
    return !prefiltered || may_hold_call_evidence((*hits)->hits, tags, pe->machine()) || prefilter_hint();
  };
  // A search in an ARM64 image whose only encodings of the tags are MOVZ/MOVK words (no bytes of a tag, of
  // a nearby constant or of a choice idiom): the RVAs of those words, the only places its code can form
  // one of the tags (the prefilter's own reasoning: may_hold_call_evidence). The analysis then resolves
  // only the call sites whose data flow can reach them (CodeAnalyser::find_call_site_tags_near). A large
  // ARM64 driver holds a half of most tags somewhere, by chance.
  const auto tag_words_only = [&]() -> std::optional<std::vector<uint32_t>> {
    if (!prefiltered || pe->machine() != Machine::arm64 || asks_for_none(tags)) return std::nullopt;
    std::vector<uint32_t> words;
    for (const LiteralHit& hit : (*hits)->hits) {
      if (hit.encoding == LiteralEncoding::bytes) return std::nullopt;
      if (const auto rva = pe->offset_to_rva(hit.offset)) words.push_back(*rva);
    }
    if (words.empty() || prefilter_hint()) return std::nullopt;
    return words;
  };
  std::vector<Evidence> evidence;
  if (pe) {
    report.parsed = true;
    report.machine = pe->machine();
    report.version = pe->version();
    if (code_to_analyse && analyse_code()) {
      result.code_analysed = true;
      const std::optional<std::vector<uint32_t>> words = tag_words_only();
      CallSiteAnalysis calls = words ? analyser->find_call_site_tags_near(*pe, tags, *words)
                                     : analyser->find_call_site_tags(*pe, all_calls ? nullptr : &tags);
      // Object-reference tags are never pool tags: listed apart in driver mode, left out of searches. The
      // analysis's own vector becomes the evidence (no copy: a large driver has hundreds of thousands).
      const auto pool_tag = [&](const Evidence& call) {
        return call.tag_kind != TagKind::objref && (all_calls || is_requested(tags, call.tag));
      };
      // (stable_partition borrows a buffer as large as the whole vector: only when something moves.)
      const auto objref_from = std::all_of(calls.calls.begin(), calls.calls.end(), pool_tag)
                                   ? calls.calls.end()
                                   : std::stable_partition(calls.calls.begin(), calls.calls.end(), pool_tag);
      if (all_calls) {
        std::vector<Evidence> objref(std::make_move_iterator(objref_from), std::make_move_iterator(calls.calls.end()));
        report.objref_findings = group_by_tag(std::move(objref));
      }
      calls.calls.erase(objref_from, calls.calls.end());
      evidence = std::move(calls.calls);
    }
  } else {
    report.errors.push_back(image.error());
  }

  if (hits) {
    if (!hits->ok()) {
      report.errors.push_back(hits->error());
    } else {
      std::vector<Evidence> literals = classify_per_tag((*hits)->hits, matcher->tags(), pe, evidence);
      evidence.reserve(evidence.size() + literals.size());  // (one exact growth, not a doubling)
      std::move(literals.begin(), literals.end(), std::back_inserter(evidence));
    }
  }
  report.findings = group_by_tag(std::move(evidence));
}

}  // namespace

FileResult analyse_file_bytes(const std::string& path, ByteView bytes, bool all_calls, const std::vector<Tag>& tags,
                              const LiteralMatcher* matcher, bool prefilter, const FileLimits& limits,
                              WindowReader* windows) {
  FileResult result;
  result.report.path = path;
  result.report.size = bytes.size();
  try {
    budget::Scope scope(limits);
    WindowReader own_windows(bytes);
    analyse_within_budget(result, bytes, windows ? *windows : own_windows, all_calls, tags, matcher, prefilter);
  } catch (const budget::Exceeded& stop) {
    // Partial evidence would rank the file by what happened to be found first: none is reported.
    result.report.findings.clear();
    result.report.objref_findings.clear();
    result.report.errors.push_back(stop.what());
  }
  return result;
}

Result<Scanner> Scanner::create(ScanRequest request) {
  Scanner scanner;
  if (!request.tags.empty()) {
    // The prefilter's patterns only when the prefilter is used.
    auto matcher = LiteralMatcher::build(request.tags, !request.all_tags && !request.full_analysis);
    if (!matcher) return Error{matcher.error()};
    scanner.matcher_ = std::make_shared<const LiteralMatcher>(std::move(*matcher));
  }
  scanner.request_ = std::move(request);
  return scanner;
}

FileResult Scanner::analyse(const std::string& path) const {
  auto mapped = MappedFile::open(path);
  if (!mapped) {
    FileResult result;
    result.report.path = path;
    result.report.errors.push_back(mapped.error());
    return result;
  }
  WindowReader windows = mapped->windows();
  FileResult result = analyse_bytes(path, mapped->view(), &windows);
  if (auto failure = mapped->read_failure()) return failed_read(path, mapped->view().size(), *failure);
  return result;
}

FileResult failed_read(const std::string& path, uint64_t size, const std::string& error) {
  FileResult result;
  result.report.path = path;
  result.report.size = size;
  result.report.errors.push_back(error);
  return result;
}

FileResult Scanner::analyse_bytes(const std::string& path, ByteView bytes, WindowReader* windows) const {
  return analyse_file_bytes(path, bytes, request_.all_tags, request_.tags, matcher_.get(), !request_.full_analysis,
                            request_.limits, windows);
}

std::vector<FileResult> scan_files(const Scanner& scanner, const std::vector<InputFile>& inputs, unsigned threads) {
  std::vector<FileResult> results(inputs.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < inputs.size(); i = next++) results[i] = scanner.analyse(inputs[i].path);
  };
  threads = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(inputs.size())));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& thread : pool) thread.join();
  return results;
}

}  // namespace tagwho
