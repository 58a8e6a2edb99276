// The architecture-independent wrapper fixpoint (see wrappers.hpp).
#include "analysis/wrappers.hpp"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <set>
#include <tuple>

namespace tagwho::wrappers {
namespace {

struct Derived {
  uint32_t entry = 0;
  EntryArg arg;
  const TagApi* api = nullptr;
  std::optional<uint64_t> pool_type;
  std::optional<uint64_t> size;
  std::vector<std::string> chain;  // this function first, the API last
};

using Key = std::tuple<uint32_t, uint8_t, uint8_t, int32_t, const TagApi*>;
Key key_of(uint32_t entry, const EntryArg& arg, const TagApi* api) {
  return {entry, static_cast<uint8_t>(arg.kind), arg.reg, arg.off, api};
}

}  // namespace

std::string function_label(uint32_t entry) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "sub@0x%x", static_cast<unsigned>(entry));
  return buffer;
}

Outcome expand(Host& host, const std::vector<Seed>& seeds, std::vector<Evidence>& out,
               std::vector<std::string>& problems, const Limits& limits) {
  Outcome outcome;
  std::set<Key> seen;
  std::deque<Derived> queue;
  const auto note_limit = [&](const std::string& what) {
    if (!outcome.limited) problems.push_back("wrapper analysis limited: " + what);
    outcome.limited = true;
  };
  const auto add_derived = [&](Derived d) {
    if (!seen.insert(key_of(d.entry, d.arg, d.api)).second) return;
    if (outcome.derived >= limits.max_derived) return note_limit("too many wrapper functions");
    if (d.chain.size() > limits.max_depth + 1) return note_limit("wrapper chain too deep");
    ++outcome.derived;
    queue.push_back(std::move(d));
  };
  for (const Seed& s : seeds) {
    if (!s.api) continue;
    Derived d;
    d.entry = s.entry;
    d.arg = s.arg;
    d.api = s.api;
    d.pool_type = s.pool_type;
    d.size = s.size;
    d.chain = {function_label(s.entry), std::string(s.api->name)};
    add_derived(std::move(d));
  }

  std::set<std::tuple<uint32_t, uint32_t, const TagApi*>> reported;  // (site, tag, api)
  size_t evidence = 0;
  while (!queue.empty()) {
    Derived d = std::move(queue.front());
    queue.pop_front();
    for (const CallerSite& site : host.callers_of(d.entry, limits.max_callers)) {
      if (outcome.sites >= limits.max_sites) {
        note_limit("too many wrapper call sites");
        return outcome;
      }
      ++outcome.sites;
      const std::vector<Value> values = host.values_at(site, d.arg);
      size_t constants = 0;
      for (const Value& v : values) constants += v.kind == Value::constant;
      for (const Value& v : values) {
        if (v.kind == Value::param) {
          if (v.def_rva == d.entry && v.arg == d.arg) continue;  // recursion: the same parameter
          Derived next;
          next.entry = v.def_rva;
          next.arg = v.arg;
          next.api = d.api;
          next.pool_type = d.pool_type;
          next.size = d.size;
          next.chain.reserve(d.chain.size() + 1);
          next.chain.push_back(function_label(v.def_rva));
          next.chain.insert(next.chain.end(), d.chain.begin(), d.chain.end());
          add_derived(std::move(next));
          continue;
        }
        if (v.kind != Value::constant) continue;
        const uint32_t tag = static_cast<uint32_t>(v.value);
        if (!reported.insert({site.rva, tag, d.api}).second) continue;
        if (++evidence > limits.max_evidence) {
          note_limit("too much wrapper evidence");
          return outcome;
        }
        Evidence e;
        e.kind = Confidence::wrapper;
        e.tag = Tag{tag};
        e.api = std::string(d.api->name);
        e.rva = site.rva;
        e.section = host.section_name(site.rva);
        e.form = site.form;
        e.tag_rva = v.def_rva;
        e.pool_type = d.pool_type;
        e.pool_flags = d.api->pool_flags;
        e.size = d.size;
        e.chain = d.chain;
        if (constants > 1) e.detail = "one of " + std::to_string(constants) + " tags";
        if (!v.detail.empty()) e.detail += (e.detail.empty() ? "" : "; ") + v.detail;
        out.push_back(std::move(e));
      }
    }
  }
  return outcome;
}

void finish_evidence(std::vector<Evidence>& evidence) {
  for (Evidence& e : evidence) {
    if (e.kind != Confidence::call && e.kind != Confidence::wrapper) continue;
    const TagApi* api = find_tag_api(e.api);
    if (!api) continue;
    e.tag_kind = api->tag_kind;
    if (api->tag_kind == TagKind::pool && (e.tag.value & Tag::kProtectedBit)) {
      e.tag = e.tag.without_protected_bit();
      e.protected_pool = true;
    }
  }
}

}  // namespace tagwho::wrappers
