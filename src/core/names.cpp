#include "tagwho/evidence.hpp"
#include "tagwho/pe_image.hpp"

namespace tagwho {

const char* confidence_name(Confidence confidence) {
  switch (confidence) {
    case Confidence::call: return "call";
    case Confidence::wrapper: return "wrapper";
    case Confidence::code: return "code";
    case Confidence::data: return "data";
    case Confidence::raw: return "raw";
  }
  return "raw";
}

const char* call_form_name(CallForm form) {
  switch (form) {
    case CallForm::none: return "";
    case CallForm::iat: return "call [iat]";
    case CallForm::reg: return "call reg";
    case CallForm::thunk: return "thunk";
    case CallForm::tail: return "tail jmp [iat]";
    case CallForm::direct: return "call";
    case CallForm::direct_tail: return "tail jmp";
  }
  return "";
}

}  // namespace tagwho
