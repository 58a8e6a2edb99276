// analyser_for(): the CodeAnalyser of each machine that has one.
#include "analysis/arm64_model.hpp"
#include "analysis/x86_model.hpp"
#include "tagwho/code_analysis.hpp"

namespace tagwho {

const CodeAnalyser* analyser_for(Machine machine) {
  switch (machine) {
    case Machine::x86:
      return &x86::x86_analyser();
    case Machine::x64:
      return &x86::x64_analyser();
    case Machine::arm64:
      return &arm64::arm64_analyser();
    default:
      return nullptr;
  }
}

}  // namespace tagwho
