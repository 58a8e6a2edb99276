// The architecture-independent part of call-site analysis, shared by x86_64.cpp and arm64.cpp: for every
// call site of a tag-taking import, the tag values that reach its tag argument become call evidence (with
// the pool type and size when they are constant), and parameters of the enclosing function that reach it
// seed the wrapper fixpoint (wrappers.hpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "analysis/wrappers.hpp"
#include "tagwho/code_analysis.hpp"

namespace tagwho::analysis {

// The constants among the definitions reaching an argument (distinct, in discovery order, each with its
// lowest defining instruction), and whether anything else reached it too.
struct Summary {
  std::vector<uint64_t> constants;
  std::vector<uint32_t> rvas;
  bool unknown = false;
};

// Def: an architecture's reaching definition (kind, value, rva). size: the argument's width in bytes.
template <typename Def>
Summary summarise(const std::vector<Def>& defs, uint8_t size) {
  Summary s;
  for (const Def& d : defs) {
    if (d.kind != Def::constant) {
      s.unknown = true;
      continue;
    }
    const uint64_t v = size >= 8 ? d.value : d.value & 0xffffffffull;
    auto it = std::find(s.constants.begin(), s.constants.end(), v);
    if (it == s.constants.end()) {
      s.constants.push_back(v);
      s.rvas.push_back(d.rva);
    } else {
      const size_t i = static_cast<size_t>(it - s.constants.begin());
      s.rvas[i] = std::min(s.rvas[i], d.rva);
    }
  }
  return s;
}

// The values that definitions stand for, as the wrapper fixpoint takes them: constants (one per 32-bit
// value, with its lowest defining instruction, immediate before loaded), constants loaded from memory
// (memory_constant(rva, size) -> optional {value, detail}; then the definition's own arithmetic,
// apply_ops found by argument-dependent lookup), the enclosing function's parameters, and one unknown
// standing for everything else.
template <typename Def, typename MemoryConstant>
std::vector<wrappers::Value> values_of(const std::vector<Def>& defs, MemoryConstant memory_constant) {
  using Loc = decltype(Def::loc);
  std::vector<wrappers::Value> out;
  const auto add_constant = [&](uint64_t value, uint32_t rva, std::string detail) {
    for (wrappers::Value& v : out)
      if (v.kind == wrappers::Value::constant && (v.value & 0xffffffffull) == (value & 0xffffffffull)) {
        if (rva < v.def_rva && detail.empty()) {
          v.def_rva = rva;
          v.detail.clear();
        }
        return;
      }
    wrappers::Value v;
    v.kind = wrappers::Value::constant;
    v.value = value;
    v.def_rva = rva;
    v.detail = std::move(detail);
    out.push_back(std::move(v));
  };
  bool unknown = false;
  for (const Def& d : defs) {
    switch (d.kind) {
      case Def::constant:
        add_constant(d.value, d.rva, {});
        break;
      case Def::mem_load:
        if (auto c = memory_constant(static_cast<uint32_t>(d.value), d.size)) {
          add_constant(apply_ops(c->value, d.loc), d.rva, c->detail);
        } else {
          unknown = true;
        }
        break;
      case Def::param: {
        wrappers::Value v;
        v.kind = wrappers::Value::param;
        v.def_rva = d.rva;
        if (d.loc.kind == Loc::in_reg) {
          v.arg = wrappers::EntryArg{wrappers::EntryArg::in_reg, d.loc.reg, 0};
        } else {
          v.arg = wrappers::EntryArg{wrappers::EntryArg::on_stack, 0, d.loc.off};
        }
        out.push_back(v);
        break;
      }
      default:
        unknown = true;
        break;
    }
  }
  if (unknown) out.push_back(wrappers::Value{});
  return out;
}

// An architecture's Analysis as the wrapper fixpoint's Host: every question goes to the analysis.
template <typename Analysis, typename Model>
class AnalysisHost final : public wrappers::Host {
 public:
  AnalysisHost(Analysis& analysis, const Model& model) : analysis_(analysis), model_(model) {}
  std::vector<wrappers::CallerSite> callers_of(uint32_t entry, size_t limit) override {
    return analysis_.callers_of(entry, limit);
  }
  std::vector<wrappers::Value> values_at(const wrappers::CallerSite& site, const wrappers::EntryArg& arg) override {
    return analysis_.values_at(site, arg);
  }
  std::string section_name(uint32_t rva) const override {
    const auto* section = model_.section_at(rva);
    return section ? section->name : std::string();
  }

 private:
  Analysis& analysis_;
  const Model& model_;
};

// The definitions reaching an argument at a site: the straight-line proof's one definition when it holds
// (the answer resolve_argument() gives, without decoding the region around the site: see
// x86_straight_line.cpp), else resolve_argument()'s.
template <typename Analysis, typename Site>
auto reaching_defs(Analysis& analysis, const Site& site, const ArgPosition& arg) {
  if (arg.present())
    if (auto def = analysis.straight_line_def(site, arg)) return std::vector{*def};
  return analysis.resolve_argument(site, arg);
}

// For an API without a tag argument (ExAllocatePool), the tag the kernel gives the allocation.
template <typename Site>
std::vector<wrappers::Value> implicit_tag_values(const Site& site, const TagApi& api) {
  std::vector<wrappers::Value> tags;
  if (api.implicit_tag) {
    wrappers::Value v;
    v.kind = wrappers::Value::constant;
    v.value = api.implicit_tag;
    v.def_rva = site.rva;
    v.detail = "untagged API: the kernel tags it '" + Tag{api.implicit_tag}.display() + "'";
    tags.push_back(std::move(v));
  }
  return tags;
}

// Analysis: the architecture's data flow after its sweep (find_sites, trim_cache, resolve_argument,
// straight_line_def, values_of, problem, problems, and the Host questions); Site: rva, import, form, and on x86
// negative_displacement. size_bytes: the width of a size argument (4 on x86, else 8). only: the tags whose
// evidence is kept (nullptr: all).
template <typename Analysis, typename Model>
CallSiteAnalysis analyse_call_sites(Analysis& analysis, const Model& model, uint8_t size_bytes,
                                    const std::vector<Tag>* only) {
  const auto wanted = [only](uint64_t value) {
    if (!only) return true;
    const Tag tag = Tag{static_cast<uint32_t>(value)}.without_protected_bit();
    return std::find(only->begin(), only->end(), tag) != only->end();
  };
  CallSiteAnalysis result;
  const auto sites = analysis.find_sites();
  result.call_sites = sites.size();
  // A listing keeps most sites' evidence: room for it at once, as a vector grown by doubling holds the old
  // and the new copy together (a large driver has hundreds of thousands of items of some 200 bytes; the room
  // left unused is never touched, so it costs address space, not memory). Capped: a hostile file can hold
  // millions of sites, and one huge reservation could fail where growing would not.
  if (!only) result.calls.reserve(std::min<size_t>(sites.size() + sites.size() / 4 + 64, size_t{1} << 20));
  std::vector<wrappers::Seed> seeds;
  for (const auto& site : sites) {
    analysis.trim_cache();
    const TagApi& api = *site.import->api;
    std::vector<wrappers::Value> tags;
    if (api.tag.present()) {
      // A search skips a site proved to pass one constant it does not want, or nothing usable (no constant,
      // no parameter): it gives no evidence and no wrapper seed, so its other arguments need no resolving.
      const auto proof = analysis.straight_line_def(site, api.tag);
      using Def = std::decay_t<decltype(*proof)>;
      if (only && proof && (proof->kind == Def::unknown || (proof->kind == Def::constant && !wanted(proof->value))))
        continue;
      // Several paths join before the call: every constant any of them can bring, when that is provable.
      if constexpr (requires { analysis.possible_constants(site, api.tag); }) {
        if (only && !proof)
          if (const auto values = analysis.possible_constants(site, api.tag);
              values && std::none_of(values->begin(), values->end(), wanted))
            continue;
      }
      tags = analysis.values_of(proof ? std::vector{*proof} : analysis.resolve_argument(site, api.tag));
    } else {
      tags = implicit_tag_values(site, api);
    }
    const size_t constants = static_cast<size_t>(std::count_if(
        tags.begin(), tags.end(), [](const wrappers::Value& v) { return v.kind == wrappers::Value::constant; }));
    const bool params = std::any_of(tags.begin(), tags.end(),
                                    [](const wrappers::Value& v) { return v.kind == wrappers::Value::param; });
    if (constants == 0 && !params) continue;
    Evidence base;
    base.kind = Confidence::call;
    base.api = std::string(api.name);
    base.rva = site.rva;
    if (const auto* section = model.section_at(site.rva)) base.section = section->name;
    base.form = site.form;
    if constexpr (requires { site.negative_displacement; }) base.negative_displacement = site.negative_displacement;
    base.pool_flags = api.pool_flags;
    if (api.pool_type.present()) {
      Summary pool = summarise(reaching_defs(analysis, site, api.pool_type), 8);
      if (pool.constants.size() == 1 && !pool.unknown) base.pool_type = pool.constants[0];
    }
    if (api.size.present()) {
      Summary size = summarise(reaching_defs(analysis, site, api.size), size_bytes);
      if (size.constants.size() == 1 && !size.unknown) base.size = size.constants[0];
    }
    for (const wrappers::Value& v : tags) {
      if (v.kind == wrappers::Value::param) {
        // The enclosing function passes its own parameter: a derived API (never a tag value itself).
        seeds.push_back(wrappers::Seed{v.def_rva, v.arg, &api, base.pool_type, base.size});
        continue;
      }
      if (v.kind != wrappers::Value::constant || !wanted(v.value)) continue;
      Evidence e = base;
      e.tag = Tag{static_cast<uint32_t>(v.value)};
      e.tag_rva = v.def_rva;
      if (constants > 1) e.detail = "one of " + std::to_string(constants) + " tags";
      if (!v.detail.empty()) e.detail += (e.detail.empty() ? "" : "; ") + v.detail;
      for (const WdfTableApi& t : kmdf_table_apis())
        if (t.api == &api)
          e.detail += (e.detail.empty() ? "" : "; ") + std::string("KMDF: through WdfFunctions[") +
                      std::to_string(t.index) + "]";
      result.calls.push_back(std::move(e));
    }
  }
  // Wrappers across functions, from the parameters that reached a tag argument to a fixpoint.
  AnalysisHost<Analysis, Model> host(analysis, model);
  std::vector<std::string> problems;
  wrappers::expand(host, seeds, result.calls, problems);
  for (std::string& problem : problems) analysis.problem(std::move(problem));
  if (only) std::erase_if(result.calls, [&](const Evidence& e) { return !wanted(e.tag.value); });
  wrappers::finish_evidence(result.calls);
  result.problems = analysis.problems();
  return result;
}

}  // namespace tagwho::analysis
