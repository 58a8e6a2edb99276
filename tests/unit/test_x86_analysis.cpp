// x86/x64 call-site analysis: hand-assembled code for each call form and data-flow shape, the sample
// drivers under samples/bin (every TAG4 in the sample's source is recovered, nothing else), and the
// generated corpus (tests/corpus/generate.sh: every call row recovered, no decoy reported as a call).
#include <doctest/doctest.h>

#include "corpus_truth.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "analysis/x86_dataflow.hpp"
#include "analysis/x86_model.hpp"
#include "scan/classify.hpp"
#include "tagwho/byte_view.hpp"
#include "tagwho/code_analysis.hpp"
#include "tagwho/pe_image.hpp"
#include "tagwho/tag_api.hpp"

using namespace tagwho;
namespace fs = std::filesystem;

namespace {

// --- Hand-assembled code -------------------------------------------------------------------------------------
// x64: .text at RVA 0x1000, image base 0x140000000; IAT slots at RVA 0x3000 + 8*i:
//   0 ExAllocatePoolWithTag, 1 ExFreePoolWithTag, 2 ExInitializeNPagedLookasideList, 3 ExAllocatePool2,
//   4 DbgPrint.  x86: .text at RVA 0x1000, image base 0x400000, the same slots at RVA 0x3000 + 4*i.
// Assembled with llvm-mc -x86-asm-syntax=intel -filetype=obj, then ld.lld -Ttext=<VA> --oformat binary
// --defsym slot_alloc=<VA of slot 0> ... (the sources are in the comments above each array).

// x64 .text (functions are 16-byte aligned with int3 padding: f1 at 0x1000, f2 0x1020, f3 0x1060, f4 0x1090,
// f5 0x10c0, f6 0x10f0, f8 0x1130, f9 0x1170, f10 0x11b0, f11 0x11e0, f12 0x1200, thunk_alloc 0x1230,
// stub_free 0x1238, thunk_free 0x1240, f13 0x1250, f14 0x1270, f15 0x12a0, f16 0x12c0, f17 0x12d0,
// f15_frag 0x12f0, f18 0x1300, f19 0x1330, table19 0x1360, f20 0x1370):
//   f1:
//     sub rsp, 0x28
//     mov ecx, 0x200
//     mov edx, 0x40
//     mov r8d, 0x7A000001
//     call qword ptr [rip + slot_alloc]
//     add rsp, 0x28
//     ret
//   .p2align 4, 0xcc
//   f2:
//     push rbx
//     push rsi
//     push rdi
//     sub rsp, 0x20
//     mov ebx, 0x7A000002
//     mov rsi, qword ptr [rip + slot_alloc]
//     mov edi, 10
//   .L2:
//     mov ecx, 1
//     mov edx, 0x80
//     mov r8d, ebx
//     call rsi
//     dec edi
//     jnz .L2
//     add rsp, 0x20
//     pop rdi
//     pop rsi
//     pop rbx
//     ret
//   .p2align 4, 0xcc
//   f3:
//     push rbx
//     sub rsp, 0x20
//     mov ebx, 0x7A000003
//     jmp .L3cond
//   .L3body:
//     mov r8d, ebx
//     mov edx, 0x20
//     xor ecx, ecx
//     call qword ptr [rip + slot_alloc]
//   .L3cond:
//     test eax, eax
//     jnz .L3body
//     add rsp, 0x20
//     pop rbx
//     ret
//   .p2align 4, 0xcc
//   f4:
//     sub rsp, 0x28
//     mov r8d, 0x7A000004
//     test ecx, ecx
//     je .L4
//     mov r8d, 0x7A000005
//   .L4:
//     mov edx, 0x10
//     mov ecx, 1
//     call qword ptr [rip + slot_alloc]
//     add rsp, 0x28
//     ret
//   .p2align 4, 0xcc
//   f5:
//     sub rsp, 0x28
//     mov eax, 0x7A000006
//     mov r8d, 0x7A000007
//     test ecx, ecx
//     cmovne r8d, eax
//     xor ecx, ecx
//     mov edx, 0x10
//     call qword ptr [rip + slot_alloc]
//     add rsp, 0x28
//     ret
//   .p2align 4, 0xcc
//   f6:
//     sub rsp, 0x28
//     mov r8d, 0x7D000001
//     call f1
//     mov ecx, 1
//     mov edx, 0x10
//     call qword ptr [rip + slot_alloc]
//     mov r8d, ecx
//     mov edx, 0x10
//     call qword ptr [rip + slot_alloc]
//     add rsp, 0x28
//     ret
//   .p2align 4, 0xcc
//   f8:
//     sub rsp, 0x48
//     mov dword ptr [rsp + 0x30], 0
//     mov dword ptr [rsp + 0x28], 0x7A000008
//     mov qword ptr [rsp + 0x20], 0x60
//     xor r9d, r9d
//     xor r8d, r8d
//     xor edx, edx
//     lea rcx, [rip + f1]
//     call qword ptr [rip + slot_lookaside]
//     add rsp, 0x48
//     ret
//   .p2align 4, 0xcc
//   f9:
//     push rbp
//     mov rbp, rsp
//     sub rsp, 0x40
//     mov dword ptr [rbp - 4], 0x7A000009
//     mov dword ptr [rbp - 8], 0x100
//     mov eax, dword ptr [rbp - 4]
//     mov r8d, eax
//     mov eax, dword ptr [rbp - 8]
//     mov edx, eax
//     mov ecx, 1
//     call qword ptr [rip + slot_alloc]
//     add rsp, 0x40
//     pop rbp
//     ret
//   .p2align 4, 0xcc
//   f10:
//     sub rsp, 0x48
//     mov dword ptr [rsp + 0x3c], 0x7A00000A
//     call f1
//     mov r8d, dword ptr [rsp + 0x3c]
//     mov edx, 0x10
//     mov ecx, 1
//     call qword ptr [rip + slot_alloc]
//     add rsp, 0x48
//     ret
//   .p2align 4, 0xcc
//   f11:
//     mov r8d, 0x7A00000B
//     mov edx, 0x30
//     xor ecx, ecx
//     jmp qword ptr [rip + slot_alloc]
//   .p2align 4, 0xcc
//   f12:
//     sub rsp, 0x28
//     mov r8d, 0x7A00000C
//     mov edx, 0x10
//     xor ecx, ecx
//     call thunk_alloc
//     mov edx, 0x7A00000D
//     mov rcx, rax
//     call stub_free
//     add rsp, 0x28
//     ret
//   .p2align 4, 0xcc
//   thunk_alloc:
//     jmp qword ptr [rip + slot_alloc]
//   .p2align 3, 0xcc
//   stub_free:
//     jmp thunk_free
//   .p2align 3, 0xcc
//   thunk_free:
//     jmp qword ptr [rip + slot_free]
//   .p2align 4, 0xcc
//   f13:
//     sub rsp, 0x28
//     push 0x7A00000E
//     pop r8
//     push 0x10
//     pop rdx
//     xor ecx, ecx
//     call qword ptr [rip + slot_alloc]
//     add rsp, 0x28
//     ret
//   .p2align 4, 0xcc
//   f14:
//     push rbx
//     sub rsp, 0x20
//     mov ebx, 0x7A00000F
//     call f1
//     mov r8d, ebx
//     mov edx, 1
//     mov ecx, 1
//     call qword ptr [rip + slot_alloc]
//     add rsp, 0x20
//     pop rbx
//     ret
//   .p2align 4, 0xcc
//   f15:
//     sub rsp, 0x28
//     mov r8d, 0x7A000010
//     test ecx, ecx
//     jne f15_frag
//   .L15back:
//     add rsp, 0x28
//     ret
//   .p2align 4, 0xcc
//   f16:
//   .L16:
//     jmp .L16
//   .p2align 4, 0xcc
//   f17:
//     cmp dword ptr [rcx], 0x6b61654c
//     jne .L17
//     mov r8d, r8d
//   .L17:
//     xor eax, eax
//     call qword ptr [rip + slot_alloc]
//     ret
//   .p2align 4, 0xcc
//   f15_frag:
//     mov edx, 0x10
//     xor ecx, ecx
//     call qword ptr [rip + slot_alloc]
//     jmp .L15back
//   .p2align 4, 0xcc
//   f18:
//     sub rsp, 0x28
//     xor r8d, r8d
//     test ecx, ecx
//     sete r8b
//     shl r8d, 24
//     add r8d, 0x41000001
//     mov edx, 0x10
//     xor ecx, ecx
//     call qword ptr [rip + slot_alloc]
//     add rsp, 0x28
//     ret
//   .p2align 4, 0xcc
//   f19:
//     sub rsp, 0x28
//     mov eax, ecx
//     mov r8d, 0x43000000
//     cmp eax, 2
//     ja .L19
//     lea rdx, [rip + table19]
//     mov r8d, dword ptr [rdx + 4*rax]
//   .L19:
//     mov edx, 0x10
//     xor ecx, ecx
//     call qword ptr [rip + slot_alloc]
//     add rsp, 0x28
//     ret
//   .p2align 4, 0xcc
//   table19:
//     .long 0x43000001, 0x43000002, 0x43000003, 0x4D000001
//   .p2align 4, 0xcc
//   f20:
//     sub rsp, 0x38
//     mov rax, qword ptr [rip + slot_alloc]
//     mov qword ptr [rsp + 0x20], rax
//     mov ecx, 1
//     mov edx, 0x10
//     mov r8d, 0x44000001
//     call qword ptr [rsp + 0x20]
//     add rsp, 0x38
//     ret
//   .p2align 4, 0xcc
//   end_of_text:
//     ret
const std::vector<uint8_t> kX64Text = {
  0x48, 0x83, 0xec, 0x28, 0xb9, 0x00, 0x02, 0x00, 0x00, 0xba, 0x40, 0x00,
  0x00, 0x00, 0x41, 0xb8, 0x01, 0x00, 0x00, 0x7a, 0xff, 0x15, 0xe6, 0x1f,
  0x00, 0x00, 0x48, 0x83, 0xc4, 0x28, 0xc3, 0xcc, 0x53, 0x56, 0x57, 0x48,
  0x83, 0xec, 0x20, 0xbb, 0x02, 0x00, 0x00, 0x7a, 0x48, 0x8b, 0x35, 0xcd,
  0x1f, 0x00, 0x00, 0xbf, 0x0a, 0x00, 0x00, 0x00, 0xb9, 0x01, 0x00, 0x00,
  0x00, 0xba, 0x80, 0x00, 0x00, 0x00, 0x41, 0x89, 0xd8, 0xff, 0xd6, 0xff,
  0xcf, 0x75, 0xed, 0x48, 0x83, 0xc4, 0x20, 0x5f, 0x5e, 0x5b, 0xc3, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x53, 0x48, 0x83, 0xec, 0x20, 0xbb, 0x03, 0x00, 0x00, 0x7a, 0xeb, 0x10,
  0x41, 0x89, 0xd8, 0xba, 0x20, 0x00, 0x00, 0x00, 0x31, 0xc9, 0xff, 0x15,
  0x84, 0x1f, 0x00, 0x00, 0x85, 0xc0, 0x75, 0xec, 0x48, 0x83, 0xc4, 0x20,
  0x5b, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x48, 0x83, 0xec, 0x28, 0x41, 0xb8, 0x04, 0x00, 0x00, 0x7a, 0x85, 0xc9,
  0x74, 0x06, 0x41, 0xb8, 0x05, 0x00, 0x00, 0x7a, 0xba, 0x10, 0x00, 0x00,
  0x00, 0xb9, 0x01, 0x00, 0x00, 0x00, 0xff, 0x15, 0x4c, 0x1f, 0x00, 0x00,
  0x48, 0x83, 0xc4, 0x28, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x48, 0x83, 0xec, 0x28, 0xb8, 0x06, 0x00, 0x00, 0x7a, 0x41, 0xb8, 0x07,
  0x00, 0x00, 0x7a, 0x85, 0xc9, 0x44, 0x0f, 0x45, 0xc0, 0x31, 0xc9, 0xba,
  0x10, 0x00, 0x00, 0x00, 0xff, 0x15, 0x1e, 0x1f, 0x00, 0x00, 0x48, 0x83,
  0xc4, 0x28, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x48, 0x83, 0xec, 0x28, 0x41, 0xb8, 0x01, 0x00, 0x00, 0x7d, 0xe8, 0x01,
  0xff, 0xff, 0xff, 0xb9, 0x01, 0x00, 0x00, 0x00, 0xba, 0x10, 0x00, 0x00,
  0x00, 0xff, 0x15, 0xf1, 0x1e, 0x00, 0x00, 0x41, 0x89, 0xc8, 0xba, 0x10,
  0x00, 0x00, 0x00, 0xff, 0x15, 0xe3, 0x1e, 0x00, 0x00, 0x48, 0x83, 0xc4,
  0x28, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0x48, 0x83, 0xec, 0x48, 0xc7, 0x44, 0x24, 0x30,
  0x00, 0x00, 0x00, 0x00, 0xc7, 0x44, 0x24, 0x28, 0x08, 0x00, 0x00, 0x7a,
  0x48, 0xc7, 0x44, 0x24, 0x20, 0x60, 0x00, 0x00, 0x00, 0x45, 0x31, 0xc9,
  0x45, 0x31, 0xc0, 0x31, 0xd2, 0x48, 0x8d, 0x0d, 0xa4, 0xfe, 0xff, 0xff,
  0xff, 0x15, 0xae, 0x1e, 0x00, 0x00, 0x48, 0x83, 0xc4, 0x48, 0xc3, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0x55, 0x48, 0x89, 0xe5,
  0x48, 0x83, 0xec, 0x40, 0xc7, 0x45, 0xfc, 0x09, 0x00, 0x00, 0x7a, 0xc7,
  0x45, 0xf8, 0x00, 0x01, 0x00, 0x00, 0x8b, 0x45, 0xfc, 0x41, 0x89, 0xc0,
  0x8b, 0x45, 0xf8, 0x89, 0xc2, 0xb9, 0x01, 0x00, 0x00, 0x00, 0xff, 0x15,
  0x64, 0x1e, 0x00, 0x00, 0x48, 0x83, 0xc4, 0x40, 0x5d, 0xc3, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x48, 0x83, 0xec, 0x48, 0xc7, 0x44, 0x24, 0x3c, 0x0a, 0x00, 0x00, 0x7a,
  0xe8, 0x3f, 0xfe, 0xff, 0xff, 0x44, 0x8b, 0x44, 0x24, 0x3c, 0xba, 0x10,
  0x00, 0x00, 0x00, 0xb9, 0x01, 0x00, 0x00, 0x00, 0xff, 0x15, 0x2a, 0x1e,
  0x00, 0x00, 0x48, 0x83, 0xc4, 0x48, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x41, 0xb8, 0x0b, 0x00, 0x00, 0x7a, 0xba, 0x30, 0x00, 0x00, 0x00, 0x31,
  0xc9, 0xff, 0x25, 0x0d, 0x1e, 0x00, 0x00, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0x48, 0x83, 0xec, 0x28,
  0x41, 0xb8, 0x0c, 0x00, 0x00, 0x7a, 0xba, 0x10, 0x00, 0x00, 0x00, 0x31,
  0xc9, 0xe8, 0x1a, 0x00, 0x00, 0x00, 0xba, 0x0d, 0x00, 0x00, 0x7a, 0x48,
  0x89, 0xc1, 0xe8, 0x15, 0x00, 0x00, 0x00, 0x48, 0x83, 0xc4, 0x28, 0xc3,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xff, 0x25, 0xca, 0x1d,
  0x00, 0x00, 0xcc, 0xcc, 0xeb, 0x06, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0xff, 0x25, 0xc2, 0x1d, 0x00, 0x00, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0x48, 0x83, 0xec, 0x28, 0x68, 0x0e, 0x00, 0x00,
  0x7a, 0x41, 0x58, 0x6a, 0x10, 0x5a, 0x31, 0xc9, 0xff, 0x15, 0x9a, 0x1d,
  0x00, 0x00, 0x48, 0x83, 0xc4, 0x28, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x53, 0x48, 0x83, 0xec, 0x20, 0xbb, 0x0f, 0x00, 0x00, 0x7a, 0xe8, 0x81,
  0xfd, 0xff, 0xff, 0x41, 0x89, 0xd8, 0xba, 0x01, 0x00, 0x00, 0x00, 0xb9,
  0x01, 0x00, 0x00, 0x00, 0xff, 0x15, 0x6e, 0x1d, 0x00, 0x00, 0x48, 0x83,
  0xc4, 0x20, 0x5b, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x48, 0x83, 0xec, 0x28, 0x41, 0xb8, 0x10, 0x00, 0x00, 0x7a, 0x85, 0xc9,
  0x75, 0x42, 0x48, 0x83, 0xc4, 0x28, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xeb, 0xfe, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x81, 0x39, 0x4c, 0x65, 0x61, 0x6b, 0x75, 0x03, 0x45, 0x89, 0xc0, 0x31,
  0xc0, 0xff, 0x15, 0x1d, 0x1d, 0x00, 0x00, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xba, 0x10, 0x00, 0x00,
  0x00, 0x31, 0xc9, 0xff, 0x15, 0x03, 0x1d, 0x00, 0x00, 0xeb, 0xaf, 0xcc,
  0x48, 0x83, 0xec, 0x28, 0x45, 0x31, 0xc0, 0x85, 0xc9, 0x41, 0x0f, 0x94,
  0xc0, 0x41, 0xc1, 0xe0, 0x18, 0x41, 0x81, 0xc0, 0x01, 0x00, 0x00, 0x41,
  0xba, 0x10, 0x00, 0x00, 0x00, 0x31, 0xc9, 0xff, 0x15, 0xdb, 0x1c, 0x00,
  0x00, 0x48, 0x83, 0xc4, 0x28, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x48, 0x83, 0xec, 0x28, 0x89, 0xc8, 0x41, 0xb8, 0x00, 0x00, 0x00, 0x43,
  0x83, 0xf8, 0x02, 0x77, 0x0b, 0x48, 0x8d, 0x15, 0x18, 0x00, 0x00, 0x00,
  0x44, 0x8b, 0x04, 0x82, 0xba, 0x10, 0x00, 0x00, 0x00, 0x31, 0xc9, 0xff,
  0x15, 0xa7, 0x1c, 0x00, 0x00, 0x48, 0x83, 0xc4, 0x28, 0xc3, 0xcc, 0xcc,
  0x01, 0x00, 0x00, 0x43, 0x02, 0x00, 0x00, 0x43, 0x03, 0x00, 0x00, 0x43,
  0x01, 0x00, 0x00, 0x4d, 0x48, 0x83, 0xec, 0x38, 0x48, 0x8b, 0x05, 0x85,
  0x1c, 0x00, 0x00, 0x48, 0x89, 0x44, 0x24, 0x20, 0xb9, 0x01, 0x00, 0x00,
  0x00, 0xba, 0x10, 0x00, 0x00, 0x00, 0x41, 0xb8, 0x01, 0x00, 0x00, 0x44,
  0xff, 0x54, 0x24, 0x20, 0x48, 0x83, 0xc4, 0x38, 0xc3, 0xcc, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xc3};

// x86 .text (x1 at 0x1000, helper_std4 0x1020, x2 0x1030, x4 0x1090, x5 0x10c0, thunk_alloc 0x10d0,
// x6 0x10e0, x7 0x1110, x9 0x1130, cdecl_helper 0x1150, x10 0x1160, x11 0x1180, x12 0x11c0, table12 0x11f0):
//   x1:
//     push esi
//     push 0x7B000001
//     push dword ptr [esp + 8]
//     call helper_std4
//     push eax
//     push 1
//     .att_syntax prefix
//     call *slot_alloc
//     pop esi
//     ret 4
//   .p2align 4, 0xcc
//   helper_std4:
//     mov eax, dword ptr [esp + 4]
//     ret 4
//   .p2align 4, 0xcc
//   x2:
//     push ebx
//     sub esp, 0x18
//     mov dword ptr [esp + 8], 0x7B000002
//     mov dword ptr [esp + 4], 0x40
//     mov dword ptr [esp], 0x200
//     .att_syntax prefix
//     call *slot_alloc
//     sub esp, 12
//     mov dword ptr [esp + 12], 0x7B000003
//     mov dword ptr [esp + 8], 0x80
//     mov dword ptr [esp + 4], 0
//     mov dword ptr [esp], 0x40
//     .att_syntax prefix
//     call *slot_pool2
//     sub esp, 16
//     add esp, 0x18
//     pop ebx
//     ret
//   .p2align 4, 0xcc
//   x4:
//     push esi
//     push edi
//     push ebx
//     mov edi, 0x7B000004
//     mov esi, dword ptr [slot_alloc]
//     mov ebx, 5
//   .L4:
//     push edi
//     push 0x10
//     push 0
//     call esi
//     dec ebx
//     jnz .L4
//     pop ebx
//     pop edi
//     pop esi
//     ret
//   .p2align 4, 0xcc
//   x5:
//     push 0x7B000005
//     push 0x20
//     push 1
//     call thunk_alloc
//     ret
//   .p2align 4, 0xcc
//   thunk_alloc:
//     .att_syntax prefix
//     jmp *slot_alloc
//   .p2align 4, 0xcc
//   x6:
//     push 0x7D000002
//     push 0x403100
//     .att_syntax prefix
//     call *slot_dbg
//     add esp, 8
//     call helper_std4
//     push eax
//     push 0x10
//     push 1
//     .att_syntax prefix
//     call *slot_alloc
//     ret
//   .p2align 4, 0xcc
//   x7:
//     push ebp
//     mov ebp, esp
//     sub esp, 8
//     mov dword ptr [ebp - 4], 0x7B000007
//     mov eax, dword ptr [ebp - 4]
//     push eax
//     push 0x30
//     push 0
//     .att_syntax prefix
//     call *slot_alloc
//     mov esp, ebp
//     pop ebp
//     ret
//   .p2align 4, 0xcc
//   x9:
//     push 0x7B000009
//     push 5
//     call cdecl_helper
//     add esp, 4
//     push eax
//     push 1
//     .att_syntax prefix
//     call *slot_alloc
//     ret
//   .p2align 4, 0xcc
//   cdecl_helper:
//     mov eax, dword ptr [esp + 4]
//     ret
//   .p2align 4, 0xcc
//   x10:
//     push 0x7B00000A
//     push 0x20
//     push 1
//     mov eax, dword ptr [slot_alloc]
//     call eax
//     ret
//   .p2align 4, 0xcc
//   x11:
//     push ebp
//     mov ebp, esp
//     sub esp, 16
//     cmp dword ptr [ebp + 8], 1
//     sbb ecx, ecx
//     and ecx, 0x01000000
//     add ecx, 0x45000001
//     mov eax, esp
//     mov dword ptr [eax + 8], ecx
//     mov dword ptr [eax + 4], 0x20
//     mov dword ptr [eax], 1
//     .att_syntax prefix
//     call *slot_alloc
//     sub esp, 12
//     add esp, 16
//     pop ebp
//     ret 4
//   .p2align 4, 0xcc
//   x12:
//     push esi
//     mov esi, 0x47000000
//     lea esi, [esi + 0]
//     mov ecx, dword ptr [esp + 8]
//     cmp ecx, 1
//     ja .L12
//     mov esi, dword ptr [4*ecx + table12]
//   .L12:
//     push esi
//     push 0x10
//     push 0
//     .att_syntax prefix
//     call *slot_alloc
//     pop esi
//     ret 4
//   .p2align 4, 0xcc
//   table12:
//     .long 0x47000001, 0x47000002, 0x4D000002
//   .p2align 4, 0xcc
//   end_of_text:
//     ret
const std::vector<uint8_t> kX86Text = {
  0x56, 0x68, 0x01, 0x00, 0x00, 0x7b, 0xff, 0x74, 0x24, 0x08, 0xe8, 0x11,
  0x00, 0x00, 0x00, 0x50, 0x6a, 0x01, 0xff, 0x15, 0x00, 0x30, 0x40, 0x00,
  0x5e, 0xc2, 0x04, 0x00, 0xcc, 0xcc, 0xcc, 0xcc, 0x8b, 0x44, 0x24, 0x04,
  0xc2, 0x04, 0x00, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x53, 0x83, 0xec, 0x18, 0xc7, 0x44, 0x24, 0x08, 0x02, 0x00, 0x00, 0x7b,
  0xc7, 0x44, 0x24, 0x04, 0x40, 0x00, 0x00, 0x00, 0xc7, 0x04, 0x24, 0x00,
  0x02, 0x00, 0x00, 0xff, 0x15, 0x00, 0x30, 0x40, 0x00, 0x83, 0xec, 0x0c,
  0xc7, 0x44, 0x24, 0x0c, 0x03, 0x00, 0x00, 0x7b, 0xc7, 0x44, 0x24, 0x08,
  0x80, 0x00, 0x00, 0x00, 0xc7, 0x44, 0x24, 0x04, 0x00, 0x00, 0x00, 0x00,
  0xc7, 0x04, 0x24, 0x40, 0x00, 0x00, 0x00, 0xff, 0x15, 0x0c, 0x30, 0x40,
  0x00, 0x83, 0xec, 0x10, 0x83, 0xc4, 0x18, 0x5b, 0xc3, 0xcc, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x56, 0x57, 0x53, 0xbf, 0x04, 0x00, 0x00, 0x7b, 0x8b, 0x35, 0x00, 0x30,
  0x40, 0x00, 0xbb, 0x05, 0x00, 0x00, 0x00, 0x57, 0x6a, 0x10, 0x6a, 0x00,
  0xff, 0xd6, 0x4b, 0x75, 0xf6, 0x5b, 0x5f, 0x5e, 0xc3, 0xcc, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x68, 0x05, 0x00, 0x00, 0x7b, 0x6a, 0x20, 0x6a, 0x01, 0xe8, 0x02, 0x00,
  0x00, 0x00, 0xc3, 0xcc, 0xff, 0x25, 0x00, 0x30, 0x40, 0x00, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0x68, 0x02, 0x00, 0x00,
  0x7d, 0x68, 0x00, 0x31, 0x40, 0x00, 0xff, 0x15, 0x10, 0x30, 0x40, 0x00,
  0x83, 0xc4, 0x08, 0xe8, 0x28, 0xff, 0xff, 0xff, 0x50, 0x6a, 0x10, 0x6a,
  0x01, 0xff, 0x15, 0x00, 0x30, 0x40, 0x00, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0x55, 0x89, 0xe5, 0x83,
  0xec, 0x08, 0xc7, 0x45, 0xfc, 0x07, 0x00, 0x00, 0x7b, 0x8b, 0x45, 0xfc,
  0x50, 0x6a, 0x30, 0x6a, 0x00, 0xff, 0x15, 0x00, 0x30, 0x40, 0x00, 0x89,
  0xec, 0x5d, 0xc3, 0xcc, 0x68, 0x09, 0x00, 0x00, 0x7b, 0x6a, 0x05, 0xe8,
  0x14, 0x00, 0x00, 0x00, 0x83, 0xc4, 0x04, 0x50, 0x6a, 0x01, 0xff, 0x15,
  0x00, 0x30, 0x40, 0x00, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x8b, 0x44, 0x24, 0x04, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0x68, 0x0a, 0x00, 0x00, 0x7b, 0x6a, 0x20, 0x6a,
  0x01, 0xa1, 0x00, 0x30, 0x40, 0x00, 0xff, 0xd0, 0xc3, 0xcc, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x55, 0x89, 0xe5, 0x83, 0xec, 0x10, 0x83, 0x7d, 0x08, 0x01, 0x19, 0xc9,
  0x81, 0xe1, 0x00, 0x00, 0x00, 0x01, 0x81, 0xc1, 0x01, 0x00, 0x00, 0x45,
  0x89, 0xe0, 0x89, 0x48, 0x08, 0xc7, 0x40, 0x04, 0x20, 0x00, 0x00, 0x00,
  0xc7, 0x00, 0x01, 0x00, 0x00, 0x00, 0xff, 0x15, 0x00, 0x30, 0x40, 0x00,
  0x83, 0xec, 0x0c, 0x83, 0xc4, 0x10, 0x5d, 0xc2, 0x04, 0x00, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0x56, 0xbe, 0x00, 0x00, 0x00, 0x47, 0x8d, 0x36,
  0x8b, 0x4c, 0x24, 0x08, 0x83, 0xf9, 0x01, 0x77, 0x07, 0x8b, 0x34, 0x8d,
  0xf0, 0x11, 0x40, 0x00, 0x56, 0x6a, 0x10, 0x6a, 0x00, 0xff, 0x15, 0x00,
  0x30, 0x40, 0x00, 0x5e, 0xc2, 0x04, 0x00, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0x01, 0x00, 0x00, 0x47, 0x02, 0x00, 0x00, 0x47,
  0x02, 0x00, 0x00, 0x4d, 0xcc, 0xcc, 0xcc, 0xcc, 0xc3};

// The code of f1 with 'Leak' as the tag, at RVA 0x4000: the IAT slot (RVA 0x3000) lies below it.
//   f1:
//     sub rsp, 0x28
//     mov ecx, 0x200
//     mov edx, 0x40
//     mov r8d, 0x6b61654c
//     call qword ptr [rip + slot_alloc]
//     add rsp, 0x28
//     ret
const std::vector<uint8_t> kNegText = {
  0x48, 0x83, 0xec, 0x28, 0xb9, 0x00, 0x02, 0x00, 0x00, 0xba, 0x40, 0x00,
  0x00, 0x00, 0x41, 0xb8, 0x4c, 0x65, 0x61, 0x6b, 0xff, 0x15, 0xe6, 0xef,
  0xff, 0xff, 0x48, 0x83, 0xc4, 0x28, 0xc3};

constexpr uint32_t kTextRva = 0x1000;

x86::CodeModel make_model(bool x64, const std::vector<uint8_t>& text, uint32_t text_rva,
                          std::vector<RuntimeFunction> functions = {}) {
  x86::CodeModel m;
  m.x64 = x64;
  m.image_base = x64 ? 0x140000000ull : 0x400000ull;
  m.entry_rva = text_rva;
  m.sections.push_back({".text", text_rva, static_cast<uint32_t>(text.size()), ByteView(text.data(), text.size()), true});
  m.sections.push_back({".idata", 0x3000, 0x100, ByteView(), false});
  const char* names[] = {"ExAllocatePoolWithTag", "ExFreePoolWithTag", "ExInitializeNPagedLookasideList",
                         "ExAllocatePool2", "DbgPrint"};
  const uint32_t stride = x64 ? 8 : 4;
  for (uint32_t i = 0; i < 5; ++i) m.imports.push_back({0x3000 + i * stride, names[i], find_tag_api(names[i])});
  m.functions = std::move(functions);
  return m;
}

// .pdata of every function of kX64Text except the thunks and f11 (a leaf tail call, as compilers emit it).
std::vector<RuntimeFunction> x64_functions() {
  return {{0x1000, 0x1020}, {0x1020, 0x1060}, {0x1060, 0x1090}, {0x1090, 0x10c0}, {0x10c0, 0x10f0},
          {0x10f0, 0x1130}, {0x1130, 0x1170}, {0x1170, 0x11b0}, {0x11b0, 0x11e0}, {0x1200, 0x1230},
          {0x1250, 0x1270}, {0x1270, 0x12a0}, {0x12a0, 0x12c0}, {0x12c0, 0x12d0}, {0x12d0, 0x12f0},
          {0x12f0, 0x1300}, {0x1300, 0x1330}, {0x1330, 0x1360}, {0x1370, 0x13a0}};
}

std::vector<Evidence> with_tag(const CallSiteAnalysis& a, uint32_t tag) {
  std::vector<Evidence> out;
  for (const Evidence& e : a.calls)
    if (e.tag.value == tag) out.push_back(e);
  return out;
}

// The one call evidence with this tag (fails the test when there is not exactly one).
Evidence one(const CallSiteAnalysis& a, uint32_t tag) {
  std::vector<Evidence> found = with_tag(a, tag);
  INFO("tag 0x" << std::hex << tag);
  REQUIRE(found.size() == 1);
  CHECK(found[0].kind == Confidence::call);
  return found[0];
}

}  // namespace

TEST_CASE("x64 call forms and data flow on hand-assembled code") {
  const x86::CodeModel model = make_model(true, kX64Text, kTextRva, x64_functions());
  const CallSiteAnalysis a = x86::analyse_call_sites(model);

  SUBCASE("call [rip+slot] with constant arguments") {
    Evidence e = one(a, 0x7A000001);
    CHECK(e.api == "ExAllocatePoolWithTag");
    CHECK(e.form == CallForm::iat);
    CHECK(e.rva == 0x1014);
    CHECK(e.tag_rva == 0x100e);
    CHECK(e.section == ".text");
    CHECK_FALSE(e.negative_displacement);
    CHECK(e.pool_type == std::optional<uint64_t>(0x200));
    CHECK(e.size == std::optional<uint64_t>(0x40));
    CHECK_FALSE(e.pool_flags);
  }
  SUBCASE("mov rsi,[slot] hoisted before a loop; tag kept in callee-saved ebx") {
    Evidence e = one(a, 0x7A000002);
    CHECK(e.form == CallForm::reg);
    CHECK(e.rva == 0x1045);
    CHECK(e.size == std::optional<uint64_t>(0x80));
  }
  SUBCASE("rotated loop: the call is reached through the loop condition") {
    CHECK(one(a, 0x7A000003).rva == 0x1076);
  }
  SUBCASE("two reaching definitions: one evidence per value") {
    CHECK(one(a, 0x7A000004).rva == 0x10ae);
    CHECK(one(a, 0x7A000005).rva == 0x10ae);
    CHECK(one(a, 0x7A000006).rva == 0x10dc);  // cmovne
    CHECK(one(a, 0x7A000007).rva == 0x10dc);
  }
  SUBCASE("volatile registers do not survive calls; parameters are unknown") {
    CHECK(with_tag(a, 0x7D000001).empty());
    for (const Evidence& e : a.calls) CHECK(e.rva != 0x1109);
    for (const Evidence& e : a.calls) CHECK(e.rva != 0x1117);
  }
  SUBCASE("stack argument: ExInitializeNPagedLookasideList's tag at [rsp+0x28]") {
    Evidence e = one(a, 0x7A000008);
    CHECK(e.api == "ExInitializeNPagedLookasideList");
    CHECK(e.size == std::optional<uint64_t>(0x60));
    CHECK_FALSE(e.pool_type.has_value());
  }
  SUBCASE("-O0 style: through [rbp-4] and [rsp+0x3c] locals, across a call") {
    Evidence e = one(a, 0x7A000009);
    CHECK(e.size == std::optional<uint64_t>(0x100));
    CHECK(e.pool_type == std::optional<uint64_t>(1));
    CHECK(one(a, 0x7A00000A).rva == 0x11d0);
  }
  SUBCASE("tail call jmp [slot] in a function without .pdata") {
    Evidence e = one(a, 0x7A00000B);
    CHECK(e.form == CallForm::tail);
    CHECK(e.rva == 0x11ed);
    CHECK(e.size == std::optional<uint64_t>(0x30));
  }
  SUBCASE("import thunks, and a stub jumping to a thunk") {
    Evidence alloc = one(a, 0x7A00000C);
    CHECK(alloc.form == CallForm::thunk);
    CHECK(alloc.rva == 0x1211);
    Evidence free = one(a, 0x7A00000D);
    CHECK(free.form == CallForm::thunk);
    CHECK(free.api == "ExFreePoolWithTag");
    CHECK(free.rva == 0x121e);
  }
  SUBCASE("push imm / pop r8; callee-saved ebx across a call; chained .pdata fragment") {
    CHECK(one(a, 0x7A00000E).size == std::optional<uint64_t>(0x10));
    CHECK(one(a, 0x7A00000F).rva == 0x128c);
    CHECK(one(a, 0x7A000010).rva == 0x12f7);
  }
  SUBCASE("computed tags: xor/test/sete/shl/add gives two values") {
    CHECK(one(a, 0x41000001).rva == 0x131f);
    CHECK(one(a, 0x42000001).rva == 0x131f);
  }
  SUBCASE("switch lowered to a bounded lookup table (lea rdx,[rip+table]; mov r8d,[rdx+4*rax])") {
    for (uint32_t t : {0x43000000u, 0x43000001u, 0x43000002u, 0x43000003u}) CHECK(one(a, t).rva == 0x1353);
    CHECK(with_tag(a, 0x4D000001).empty());  // the entry after the bound
  }
  SUBCASE("function pointer kept in a stack slot: call [rsp+0x20]") {
    CHECK(one(a, 0x44000001).form == CallForm::reg);
  }
  SUBCASE("nothing else") {
    std::set<uint32_t> expected = {0x41000001, 0x42000001, 0x43000000, 0x43000001, 0x43000002, 0x43000003, 0x44000001};
    for (uint32_t t = 0x7A000001; t <= 0x7A000010; ++t) expected.insert(t);
    for (const Evidence& e : a.calls) {
      INFO("rva 0x" << std::hex << e.rva << " tag 0x" << e.tag.value);
      CHECK(expected.count(e.tag.value) == 1);
    }
    // f1 f2 f3 f4 f5 f6(2) f8 f9 f10 f11 f12(2) f13 f14 f17 f15_frag f18 f19 f20
    CHECK(a.call_sites == 20);
  }
}

TEST_CASE("x64 negative RIP displacement to the IAT") {
  const x86::CodeModel model = make_model(true, kNegText, 0x4000, {{0x4000, 0x401f}});
  const CallSiteAnalysis a = x86::analyse_call_sites(model);
  Evidence e = one(a, 0x6b61654c);
  CHECK(e.negative_displacement);
  CHECK(e.form == CallForm::iat);
  CHECK(e.rva == 0x4014);
}

TEST_CASE("the sweep resynchronises on a .pdata function start inside an instruction, whatever its kind") {
  // Three functions, each `call [rip+slot_alloc]; ret`, starting inside the bytes of the instruction before
  // them as linear decoding reads it: a direct branch (jne rel32), an instruction the sweep steps over (mov
  // eax, imm32) and one it reads whole (mov rax, [rip+disp32]). Without resynchronising on the function
  // start, decoding goes on inside the call and never sees it.
  const std::vector<uint8_t> text = {
      0x0f, 0x85,                                // 0x4000: jne rel32 (its rel32: the call's first 4 bytes)
      0xff, 0x15, 0xf8, 0xef, 0xff, 0xff, 0xc3,  // 0x4002: call [rip-0x1008] (slot 0x3000); ret
      0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
      0xb8,                                      // 0x4010: mov eax, imm32
      0xff, 0x15, 0xe9, 0xef, 0xff, 0xff, 0xc3,  // 0x4011: call [rip-0x1017]; ret
      0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
      0x48, 0x8b, 0x05,                          // 0x4020: mov rax, [rip+disp32]
      0xff, 0x15, 0xd7, 0xef, 0xff, 0xff, 0xc3,  // 0x4023: call [rip-0x1029]; ret
      0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc};
  const x86::CodeModel model = make_model(true, text, 0x4000, {{0x4002, 0x4009}, {0x4011, 0x4018}, {0x4023, 0x402a}});
  x86::Analysis analysis(model);
  analysis.sweep();
  std::vector<uint32_t> sites;
  for (const x86::Site& site : analysis.find_sites()) sites.push_back(site.rva);
  CHECK(sites == std::vector<uint32_t>{0x4002, 0x4011, 0x4023});
  // Without the functions, linear decoding misses all three.
  const x86::CodeModel bare = make_model(true, text, 0x4000);
  x86::Analysis linear(bare);
  linear.sweep();
  CHECK(linear.find_sites().empty());
}

TEST_CASE("x86 stdcall argument slots on hand-assembled code") {
  const x86::CodeModel model = make_model(false, kX86Text, kTextRva);
  const CallSiteAnalysis a = x86::analyse_call_sites(model);
  SUBCASE("push sequence around a nested stdcall call (ret 4)") {
    Evidence e = one(a, 0x7B000001);
    CHECK(e.form == CallForm::iat);
    CHECK(e.rva == 0x1012);
    CHECK(e.tag_rva == 0x1001);
    CHECK(e.pool_type == std::optional<uint64_t>(1));
    CHECK_FALSE(e.size.has_value());  // eax from the nested call
  }
  SUBCASE("GCC style: mov [esp+N] after sub esp, and ExAllocatePool2's tag in slot 3") {
    Evidence e = one(a, 0x7B000002);
    CHECK(e.pool_type == std::optional<uint64_t>(0x200));
    CHECK(e.size == std::optional<uint64_t>(0x40));
    Evidence p = one(a, 0x7B000003);
    CHECK(p.api == "ExAllocatePool2");
    CHECK(p.pool_flags);
    CHECK(p.pool_type == std::optional<uint64_t>(0x40));
    CHECK(p.size == std::optional<uint64_t>(0x80));
  }
  SUBCASE("mov esi,[slot] before a loop; tag pushed from callee-saved edi") {
    CHECK(one(a, 0x7B000004).form == CallForm::reg);
    CHECK(one(a, 0x7B00000A).form == CallForm::reg);  // mov eax, [slot] (moffs form); call eax
  }
  SUBCASE("thunk") { CHECK(one(a, 0x7B000005).form == CallForm::thunk); }
  SUBCASE("frame locals and cdecl calls cleaned up with add esp") {
    CHECK(one(a, 0x7B000007).size == std::optional<uint64_t>(0x30));
    CHECK(one(a, 0x7B000009).pool_type == std::optional<uint64_t>(1));
  }
  SUBCASE("clang -O0: arguments stored through a copy of esp; a ternary compiled to sbb/and/add") {
    CHECK(one(a, 0x45000001).pool_type == std::optional<uint64_t>(1));
    CHECK(one(a, 0x46000001).size == std::optional<uint64_t>(0x20));
  }
  SUBCASE("lookup table with an absolute address; lea esi,[esi+0] padding") {
    for (uint32_t t : {0x47000000u, 0x47000001u, 0x47000002u}) CHECK(one(a, t).api == "ExAllocatePoolWithTag");
    CHECK(with_tag(a, 0x4D000002).empty());
  }
  SUBCASE("decoys: a DbgPrint argument, and eax from a call") {
    CHECK(with_tag(a, 0x7D000002).empty());
    std::set<uint32_t> expected = {0x7B000001, 0x7B000002, 0x7B000003, 0x7B000004, 0x7B000005, 0x7B000007,
                                   0x7B000009, 0x7B00000A, 0x45000001, 0x46000001, 0x47000000, 0x47000001,
                                   0x47000002};
    for (const Evidence& e : a.calls) {
      INFO("rva 0x" << std::hex << e.rva << " tag 0x" << e.tag.value);
      CHECK(expected.count(e.tag.value) == 1);
    }
    CHECK(a.call_sites == 11);
  }
}

TEST_CASE("immediate_use_at finds the instruction whose immediate holds the bytes") {
  const x86::CodeModel model = make_model(true, kX64Text, kTextRva, {{0x1000, 0x1020}, {0x12d0, 0x12f0}});
  auto mov = x86::immediate_use_at(model, 0x1010);  // mov r8d, 0x7A000001 at 0x100e
  REQUIRE(mov.has_value());
  CHECK(mov->instruction_rva == 0x100e);
  CHECK(mov->mnemonic == "mov");
  auto cmp = x86::immediate_use_at(model, 0x12d2);  // cmp dword ptr [rcx], 'Leak' at 0x12d0
  REQUIRE(cmp.has_value());
  CHECK(cmp->instruction_rva == 0x12d0);
  CHECK(cmp->mnemonic == "cmp");
  CHECK_FALSE(x86::immediate_use_at(model, 0x1016).has_value());  // the displacement of call [rip+d]
  CHECK_FALSE(x86::immediate_use_at(model, 0x1011).has_value());  // straddles the immediate's end
  CHECK_FALSE(x86::immediate_use_at(model, 0x3000).has_value());  // not code
  const x86::CodeModel m86 = make_model(false, kX86Text, kTextRva);
  auto push = x86::immediate_use_at(m86, 0x1002);  // push 0x7B000001 at 0x1001
  REQUIRE(push.has_value());
  CHECK(push->mnemonic == "push");
}

TEST_CASE("hostile code: random bytes and self loops finish quickly") {
  std::vector<uint8_t> junk(64 * 1024);
  uint32_t state = 12345;
  for (uint8_t& b : junk) {
    state = state * 1103515245u + 12345u;
    b = static_cast<uint8_t>(state >> 16);
  }
  // Sprinkle references to the alloc slot: x86 call [abs] and x64 call [rip+d] encodings.
  for (size_t at = 100; at + 16 < junk.size(); at += 997) {
    junk[at] = 0xff;
    junk[at + 1] = 0x15;
    const uint32_t abs = 0x403000;
    const uint32_t rel = static_cast<uint32_t>(0x3000 - (kTextRva + at + 6) + 0x100000);
    const uint32_t v = (at / 997) % 2 ? abs : rel;
    for (int i = 0; i < 4; ++i) junk[at + 2 + i] = static_cast<uint8_t>(v >> (8 * i));
  }
  for (bool x64 : {true, false}) {
    x86::CodeModel model = make_model(x64, junk, kTextRva);
    model.sections[0].size = static_cast<uint32_t>(junk.size());
    auto t0 = std::chrono::steady_clock::now();
    CallSiteAnalysis a = x86::analyse_call_sites(model);
    for (uint32_t rva = kTextRva; rva < kTextRva + 4096; rva += 61) (void)x86::immediate_use_at(model, rva);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    CHECK(ms < 5000);
  }
}

TEST_CASE("the analysis is usable from several threads at once") {
  const x86::CodeModel model = make_model(true, kX64Text, kTextRva, {{0x1000, 0x1020}, {0x1020, 0x1060}});
  const size_t expected = x86::analyse_call_sites(model).calls.size();
  REQUIRE(expected > 0);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i)
        if (x86::analyse_call_sites(model).calls.size() != expected) ++mismatches;
    });
  for (std::thread& t : threads) t.join();
  CHECK(mismatches == 0);
}

TEST_CASE("analyser_for") {
  CHECK(analyser_for(Machine::x86) != nullptr);
  CHECK(analyser_for(Machine::x64) != nullptr);
  CHECK(analyser_for(Machine::arm64) != nullptr);
  CHECK(analyser_for(Machine::other) == nullptr);
}

// --- Real drivers -----------------------------------------------------------------------------------------

namespace {

struct Analysed {
  bool ok = false;
  std::string error;
  Machine machine = Machine::other;
  CallSiteAnalysis calls;
};

Analysed analyse_file(const fs::path& path) {
  Analysed out;
  auto mapped = MappedFile::open(path.string());
  if (!mapped) {
    out.error = mapped.error();
    return out;
  }
  auto image = PeImage::load(mapped->view());
  if (!image) {
    out.error = image.error();
    return out;
  }
  out.machine = image->machine();
  const CodeAnalyser* analyser = analyser_for(image->machine());
  if (!analyser) {
    out.error = "no analyser";
    return out;
  }
  out.calls = analyser->find_call_site_tags(*image);
  out.ok = true;
  return out;
}

}  // namespace

TEST_CASE("sample drivers: every TAG4 of the source is a call-site tag, and nothing else") {
  const fs::path bin = fs::path(TAGWHO_SOURCE_DIR) / "samples" / "bin";
  std::vector<fs::path> files;
  if (fs::is_directory(bin))
    for (const auto& entry : fs::directory_iterator(bin))
      if (entry.path().extension() == ".sys") files.push_back(entry.path());
  if (files.empty()) {
    MESSAGE("no sample drivers under samples/bin: skipped");
    return;
  }
  std::sort(files.begin(), files.end());
  const std::regex tag4(R"(TAG4\('(.)',\s*'(.)',\s*'(.)',\s*'(.)'\))");
  for (const fs::path& file : files) {
    const std::string stem = file.stem().string();
    const fs::path source = fs::path(TAGWHO_SOURCE_DIR) / "samples" / "src" / (stem.substr(0, stem.find('-')) + ".c");
    INFO(file.filename().string());
    REQUIRE(fs::exists(source));
    std::ifstream in(source);
    std::stringstream text;
    text << in.rdbuf();
    const std::string src = text.str();
    std::set<uint32_t> expected;
    for (std::sregex_iterator it(src.begin(), src.end(), tag4), end; it != end; ++it)
      expected.insert(test::tag_value((*it)[1].str() + (*it)[2].str() + (*it)[3].str() + (*it)[4].str()));
    Analysed a = analyse_file(file);
    REQUIRE_MESSAGE(a.ok, a.error);
    std::set<uint32_t> got;
    for (const Evidence& e : a.calls.calls) {
      CHECK(e.kind == Confidence::call);
      got.insert(e.tag.value);
    }
    CHECK(got == expected);
  }
}

namespace {

}  // namespace

TEST_CASE("corpus: every call row recovered with its API, no decoy reported as a call") {
  const fs::path dir = test::corpus_dir_for_test();
  if (dir.empty()) return;
  const auto by_file = test::read_truth(dir);
  size_t total = 0;
  size_t found = 0;
  for (const auto& [file, rows] : by_file) {
    INFO(file);
    Analysed a = analyse_file(dir / file);
    REQUIRE_MESSAGE(a.ok, a.error);
    size_t file_total = 0;
    size_t file_found = 0;
    std::string missed;
    for (const test::TruthRow& row : rows) {
      INFO(row.tag << " " << row.expect << " " << row.pattern);
      const uint32_t value = test::tag_value(row.tag);
      bool as_call = false;
      bool with_api = false;
      for (const Evidence& e : a.calls.calls) {
        if (e.tag.value != value || e.kind != Confidence::call || e.tag_kind != TagKind::pool) continue;
        as_call = true;
        if (e.api == row.api) with_api = true;
      }
      if (row.expect == "call") {
        ++file_total;
        if (with_api) ++file_found;
        else missed += " " + row.tag + "(" + row.pattern + ")";
        CHECK(with_api);
      } else if (row.expect == "decoy") {
        CHECK_FALSE(as_call);
      }  // "wrapper" rows: checked by test_wrappers.cpp
    }
    MESSAGE(file << ": " << file_found << "/" << file_total << " call rows recovered" << missed);
    total += file_total;
    found += file_found;
  }
  MESSAGE("corpus: " << found << "/" << total << " call rows recovered");
}

TEST_CASE("immediates looked up together give exactly what each lookup alone gives") {
  // Every x86/x64 sample and corpus driver, addresses every 3 bytes of every code section (plus
  // duplicates), asked in a scrambled order: the shared decoding of immediates_at must answer each one
  // as immediate_at does on its own.
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(std::string(TAGWHO_SOURCE_DIR) + "/samples/bin")) files.push_back(entry.path());
  if (const char* corpus = std::getenv("TAGWHO_CORPUS_DIR"); corpus && fs::is_directory(corpus))
    for (const auto& entry : fs::directory_iterator(corpus))
      if (entry.path().extension() == ".sys") files.push_back(entry.path());
  size_t compared = 0, found = 0;
  for (const fs::path& path : files) {
    auto mapped = MappedFile::open(path.string());
    REQUIRE(mapped);
    auto image = PeImage::load(mapped->view());
    if (!image || (image->machine() != Machine::x86 && image->machine() != Machine::x64)) continue;
    CAPTURE(path.string());
    const CodeAnalyser* analyser = analyser_for(image->machine());
    REQUIRE(analyser != nullptr);
    std::vector<uint32_t> rvas;
    for (const Section& section : image->sections())
      if (section.is_code())
        for (uint32_t rva = section.rva; rva < section.rva + std::min<uint32_t>(section.mapped_size(), 0x3000); rva += 3)
          rvas.push_back(rva);
    for (size_t i = 0; i < rvas.size(); i += 7) rvas.push_back(rvas[i]);  // duplicates
    std::reverse(rvas.begin() + static_cast<std::ptrdiff_t>(rvas.size() / 2), rvas.end());
    const auto together = analyser->immediates_at(*image, rvas);
    REQUIRE(together.size() == rvas.size());
    for (size_t i = 0; i < rvas.size(); ++i) {
      const auto alone = analyser->immediate_at(*image, rvas[i]);
      CAPTURE(rvas[i]);
      REQUIRE(together[i].has_value() == alone.has_value());
      if (alone) {
        CHECK(together[i]->instruction_rva == alone->instruction_rva);
        CHECK(together[i]->mnemonic == alone->mnemonic);
        ++found;
      }
      ++compared;
    }
  }
  CHECK(compared > 10000);
  CHECK(found > 100);
}

TEST_CASE("ImmediateUses answers every address as immediate_at does, dense or sparse") {
  // Every x86/x64 sample and corpus driver. Dense: a hit at every byte of the code, so that there are more
  // uses than 256-byte blocks between the first and the last (checked), and at() searches one block's uses.
  // Sparse: hits at the first and the last immediate only, over more than two blocks, and at() searches
  // them all. Each address asked gives what immediate_at gives alone; an address not asked (an immediate
  // between the two, or beside an asked one), below the first or past the last gives nothing.
  size_t dense_files = 0, sparse_files = 0;
  for (const fs::path& path : test::sample_and_corpus_drivers()) {
    auto mapped = MappedFile::open(path.string());
    REQUIRE(mapped);
    auto image = PeImage::load(mapped->view());
    if (!image || (image->machine() != Machine::x86 && image->machine() != Machine::x64)) continue;
    CAPTURE(path.string());
    const CodeAnalyser* analyser = analyser_for(image->machine());
    REQUIRE(analyser != nullptr);
    const auto hits_at = [&](const std::vector<uint32_t>& rvas) {
      std::vector<LiteralHit> hits;
      for (const uint32_t rva : rvas) {
        LiteralHit hit;
        hit.offset = *image->rva_to_offset(rva);
        hits.push_back(hit);
      }
      return hits;
    };
    std::vector<uint32_t> every, immediates;
    for (const Section& section : image->sections())
      if (section.is_code())
        for (uint32_t at = 0; at + 4 <= std::min(section.raw_size, section.mapped_size()); ++at) every.push_back(section.rva + at);
    const ImmediateUses dense(hits_at(every), &*image);
    for (const uint32_t rva : every) {
      const auto alone = analyser->immediate_at(*image, rva);
      const auto looked_up = dense.at(rva);
      CAPTURE(rva);
      REQUIRE(looked_up.has_value() == alone.has_value());
      if (!alone) continue;
      CHECK(looked_up->instruction_rva == alone->instruction_rva);
      CHECK(looked_up->mnemonic == alone->mnemonic);
      immediates.push_back(rva);
    }
    if (immediates.size() < 3) continue;
    CHECK_FALSE(dense.at(every.front() - 1).has_value());
    CHECK_FALSE(dense.at(0xfffffff0u).has_value());
    if (immediates.size() >= ((immediates.back() - immediates.front()) >> 8) + 1) ++dense_files;
    // Sparse: the first and the last immediate, more than two blocks apart.
    if (immediates.back() - immediates.front() < 512) continue;
    const ImmediateUses sparse(hits_at({immediates.front(), immediates.back()}), &*image);
    for (const uint32_t rva : {immediates.front(), immediates.back()}) {
      const auto looked_up = sparse.at(rva);
      REQUIRE(looked_up.has_value());
      CHECK(looked_up->instruction_rva == dense.at(rva)->instruction_rva);
    }
    CHECK_FALSE(sparse.at(immediates[immediates.size() / 2]).has_value());
    CHECK_FALSE(sparse.at(immediates.front() + 1).has_value());
    CHECK_FALSE(sparse.at(immediates.front() - 1).has_value());
    CHECK_FALSE(sparse.at(immediates.back() + 1).has_value());
    ++sparse_files;
  }
  CHECK(dense_files >= 5);
  CHECK(sparse_files >= 5);
  MESSAGE(dense_files << " files with more immediates than blocks, " << sparse_files << " looked up sparsely");
}

namespace {

struct ProofTally {
  size_t arguments = 0;  // (site, argument) pairs looked at
  size_t proved = 0;     // ... that straight_line_def() settled
  size_t bounded = 0;    // ... whose possible constants possible_constants() gave
};

// Every answer straight_line_def() gives must be the one resolve_argument() finds in full; every set of
// possible_constants() must hold every constant resolve_argument() finds, and nothing else may reach.
void check_straight_line_proofs(const x86::CodeModel& model, const std::string& name, ProofTally& tally) {
  x86::Analysis analysis(model);
  analysis.sweep();
  for (const x86::Site& site : analysis.find_sites()) {
    const TagApi& api = *site.import->api;
    for (const ArgPosition* arg : {&api.tag, &api.pool_type, &api.size}) {
      if (!arg->present()) continue;
      ++tally.arguments;
      if (const auto possible = analysis.possible_constants(site, *arg)) {
        ++tally.bounded;
        INFO(name << ": site 0x" << std::hex << site.rva << " " << api.name << " argument " << std::dec << arg->index);
        for (const x86::Def& def : analysis.resolve_argument(site, *arg)) {
          CHECK(def.kind != x86::Def::param);
          CHECK(def.kind != x86::Def::mem_load);
          if (def.kind == x86::Def::constant)
            CHECK(std::binary_search(possible->begin(), possible->end(), def.value));
        }
      }
      const std::optional<x86::Def> proof = analysis.straight_line_def(site, *arg);
      if (!proof) continue;
      ++tally.proved;
      const std::vector<x86::Def> full = analysis.resolve_argument(site, *arg);
      INFO(name << ": site 0x" << std::hex << site.rva << " " << api.name << " argument " << std::dec << arg->index);
      test::check_one_definition(full, *proof);
    }
  }
}

}  // namespace

TEST_CASE("straight-line proofs of an argument agree with the full data flow") {
  SUBCASE("hand-assembled code: proved where nothing joins, declined where a jump lands in between") {
    const x86::CodeModel model = make_model(true, kX64Text, kTextRva, x64_functions());
    x86::Analysis analysis(model);
    analysis.sweep();
    const std::vector<x86::Site> sites = analysis.find_sites();
    const auto site_at = [&](uint32_t rva) {
      auto it = std::find_if(sites.begin(), sites.end(), [rva](const x86::Site& s) { return s.rva == rva; });
      REQUIRE(it != sites.end());
      return *it;
    };
    const TagApi& alloc = *find_tag_api("ExAllocatePoolWithTag");
    // f1: mov r8d, 0x7A000001 right before call [rip+slot].
    const std::optional<x86::Def> f1 = analysis.straight_line_def(site_at(0x1014), alloc.tag);
    REQUIRE(f1);
    CHECK(f1->kind == x86::Def::constant);
    CHECK(f1->value == 0x7A000001);
    CHECK(f1->rva == 0x100e);
    // f4: two definitions reach the call through a join: only the full walk finds both, and the paths
    // before the call bound them.
    CHECK_FALSE(analysis.straight_line_def(site_at(0x10ae), alloc.tag));
    const auto f4 = analysis.possible_constants(site_at(0x10ae), alloc.tag);
    REQUIRE(f4);
    CHECK(*f4 == std::vector<uint64_t>{0x7A000004, 0x7A000005});
    // f2: the tag comes from ebx, set before a loop whose back edge lands between: declined.
    CHECK_FALSE(analysis.straight_line_def(site_at(0x1045), alloc.tag));

    // x86: a call target inside another instruction (0x1001, in mov eax's immediate) decodes as jmp 0x100a,
    // into the pushes before the call. The region around the call starts there and has a branch the sweep
    // never saw, which joins the path from the push of the tag:
    //   1000: mov eax, 0x909007eb     (from 1001: jmp 100a; nop; nop)
    //   1005: push 0x41424344
    //   100a: push 0x10
    //   100c: push 0
    //   100e: call [ExAllocatePoolWithTag]
    //   1014: ret
    //   1015: call 0x1001
    //   101a: ret
    const std::vector<uint8_t> overlapped = {0xb8, 0xeb, 0x07, 0x90, 0x90, 0x68, 0x44, 0x43, 0x42, 0x41,
                                             0x6a, 0x10, 0x6a, 0x00, 0xff, 0x15, 0x00, 0x30, 0x40, 0x00,
                                             0xc3, 0xe8, 0xe7, 0xff, 0xff, 0xff, 0xc3};
    const x86::CodeModel overlapped_model = make_model(false, overlapped, kTextRva);
    x86::Analysis x86_analysis(overlapped_model);
    x86_analysis.sweep();
    const std::vector<x86::Site> x86_sites = x86_analysis.find_sites();
    REQUIRE(x86_sites.size() == 1);
    REQUIRE(x86_sites[0].rva == 0x100e);
    CHECK_FALSE(x86_analysis.straight_line_def(x86_sites[0], alloc.tag));
    CHECK_FALSE(x86_analysis.possible_constants(x86_sites[0], alloc.tag));
    CHECK(x86_analysis.resolve_argument(x86_sites[0], alloc.tag).size() == 2);

    ProofTally tally;
    check_straight_line_proofs(overlapped_model, "x86 overlapping instructions", tally);
    check_straight_line_proofs(model, "x64 hand-assembled", tally);
    check_straight_line_proofs(make_model(false, kX86Text, kTextRva), "x86 hand-assembled", tally);
    CHECK(tally.proved > 0);
  }
  SUBCASE("every call site of every x86/x64 sample and corpus driver") {
    const std::vector<fs::path> files = test::sample_and_corpus_drivers();
    ProofTally tally;
    size_t images = 0;
    for (const fs::path& file : files) {
      auto mapped = MappedFile::open(file.string());
      REQUIRE(mapped);
      auto image = PeImage::load(mapped->view());
      if (!image || (image->machine() != Machine::x86 && image->machine() != Machine::x64)) continue;
      ++images;
      check_straight_line_proofs(x86::model_from_image(*image), file.filename().string(), tally);
    }
    MESSAGE(images << " images: " << tally.proved << " of " << tally.arguments << " arguments proved straight-line, "
                   << tally.bounded << " bounded over all paths");
    CHECK(images >= 10);
    CHECK(tally.proved * 2 > tally.arguments);  // most arguments are set just before the call
  }
}

namespace {

// The addresses the sweep's findings can be looked up at: from image_base, span bytes (the end of the last
// section and the 64 bytes address_taken_near() looks below a global).
struct LookedUp {
  bool x64;
  uint64_t image_base;
  uint64_t span;
  bool holds(int64_t value) const {  // as Decoder::facts_of() reads values: 32 bits on x86
    const uint64_t va = x64 ? static_cast<uint64_t>(value) : static_cast<uint64_t>(value) & 0xffffffffull;
    return va >= image_base && va - image_base < span;
  }
};

// What the sweep reads from an instruction (function_bounds.cpp, sweep() and note(); x86_insn.cpp,
// Decoder::facts_of()): length, flow and direct target, padding, an absolute or RIP-relative memory address with
// the mnemonic (mov, lea or another) and the first memory operand's access, the kind of an indirect
// branch's operand, and the immediates and displacements that can be addresses it looks up.
struct SweepView {
  uint8_t length = 0;
  x86::Flow flow = x86::Flow::normal;
  bool has_target = false;
  uint32_t target = 0;
  bool nop = false, padding = false, mov = false, lea = false;
  std::optional<uint32_t> mem_rva;
  bool negative = false;
  bool mem_found = false, mem_write = false;
  uint8_t mem_size = 0;
  x86::OpKind indirect = x86::OpKind::none;
  std::vector<int64_t> addresses;
  uint8_t disp_bits = 0, imm_offset[2] = {0, 0}, imm_size[2] = {0, 0};

  bool operator==(const SweepView& o) const {
    return length == o.length && flow == o.flow && has_target == o.has_target && target == o.target &&
           nop == o.nop && padding == o.padding && mov == o.mov && lea == o.lea && mem_rva == o.mem_rva &&
           negative == o.negative && mem_found == o.mem_found && mem_write == o.mem_write &&
           mem_size == o.mem_size && indirect == o.indirect && addresses == o.addresses &&
           disp_bits == o.disp_bits && imm_offset[0] == o.imm_offset[0] && imm_offset[1] == o.imm_offset[1] &&
           imm_size[0] == o.imm_size[0] && imm_size[1] == o.imm_size[1];
  }
};

SweepView sweep_view(const x86::Insn& insn, const LookedUp& looked_up) {
  SweepView v;
  v.length = insn.length;
  v.flow = insn.flow;
  v.has_target = insn.has_target;
  v.target = insn.has_target ? insn.target : 0;
  v.nop = insn.mnemonic == ZYDIS_MNEMONIC_NOP;
  v.padding = x86::is_padding(insn);
  v.mem_rva = insn.mem_rva;
  // The sweep tells mov and lea apart, and reads the first memory operand's access, only at such an address.
  v.mov = insn.mem_rva && insn.mnemonic == ZYDIS_MNEMONIC_MOV;
  v.lea = insn.mem_rva && insn.mnemonic == ZYDIS_MNEMONIC_LEA;
  v.negative = insn.mem_rva && insn.negative_disp;
  for (int i = 0; insn.mem_rva && i < insn.operand_count; ++i)
    if (insn.op[i].kind == x86::OpKind::mem) {
      v.mem_found = true;
      v.mem_write = insn.op[i].write;
      v.mem_size = insn.op[i].write ? insn.op[i].size : 0;
      break;
    }
  if ((insn.flow == x86::Flow::call_indirect || insn.flow == x86::Flow::jmp_indirect) && insn.operand_count > 0)
    v.indirect = insn.op[0].kind;
  const bool direct = insn.flow == x86::Flow::call || insn.flow == x86::Flow::jmp || insn.flow == x86::Flow::jcc;
  for (int i = 0; i < insn.operand_count; ++i) {
    const x86::Operand& op = insn.op[i];
    if (op.kind == x86::OpKind::imm && op.size >= 4 && !direct && looked_up.holds(static_cast<int64_t>(op.imm)))
      v.addresses.push_back(static_cast<int64_t>(op.imm));
    if (op.kind == x86::OpKind::mem && !op.segment_override && op.base != x86::kRip &&
        (op.base != x86::kNoReg || op.index != x86::kNoReg) && insn.disp_bits >= 16 && looked_up.holds(op.disp))
      v.addresses.push_back(op.disp);
  }
  v.disp_bits = insn.disp_bits;
  for (int i = 0; i < 2; ++i) {
    v.imm_offset[i] = insn.imm_offset[i];
    v.imm_size[i] = insn.imm_size[i];
  }
  return v;
}

// The sweep's facts about an instruction, as the sweep uses them: the image addresses taken only where it
// can look them up (as for SweepView).
std::string facts_view(const x86::SweepFacts& f, const LookedUp& looked_up) {
  std::ostringstream o;
  o << "length " << int(f.length) << " flow " << int(f.flow) << " target " << f.has_target << "/" << f.target
    << " padding " << f.padding << " mem_rva " << (f.mem_rva ? std::to_string(*f.mem_rva) : "-") << " neg "
    << f.negative_disp << " mov/lea " << f.mov << f.lea << " write " << f.write << "/" << int(f.size) << " through "
    << f.through_operand << " taken";
  for (int i = 0; i < f.taken_count; ++i)
    if (looked_up.holds(static_cast<int64_t>(looked_up.image_base + f.taken[i])))
      o << " " << f.taken[i] << (f.code_pointer[i] ? " (code pointer?)" : "");
  return o.str();
}

// Whether the facts say what the sweep reads from the instruction v views: Decoder::facts_of() held to this
// test's own reading (SweepView) of Zydis's decoding. (The table's facts are held to facts_of().)
bool facts_say(const x86::SweepFacts& f, const SweepView& v, const LookedUp& looked_up) {
  const bool write = v.mem_rva && !v.lea && (v.mem_found ? v.mem_write : true);  // (no operand kept: the worst)
  const uint8_t size = !write ? 0 : v.mem_found ? v.mem_size : 16;
  std::vector<int64_t> taken;  // as the values SweepView keeps
  for (int i = 0; i < f.taken_count; ++i) {
    const int64_t value = static_cast<int64_t>(looked_up.image_base + f.taken[i]);
    if (looked_up.holds(value)) taken.push_back(value);
  }
  std::vector<int64_t> addresses;
  for (int64_t a : v.addresses)
    addresses.push_back(looked_up.x64 ? a : static_cast<int64_t>(static_cast<uint64_t>(a) & 0xffffffffull));
  std::sort(taken.begin(), taken.end());
  std::sort(addresses.begin(), addresses.end());
  return f.length == v.length && f.flow == v.flow && f.has_target == v.has_target &&
         (!f.has_target || f.target == v.target) && f.padding == v.padding && f.mem_rva == v.mem_rva &&
         f.mov == v.mov && f.lea == v.lea && f.negative_disp == v.negative && f.write == write && f.size == size &&
         f.through_operand == (v.indirect == x86::OpKind::reg || v.indirect == x86::OpKind::mem) && taken == addresses;
}

// The first bytes at p, in hex (for messages).
std::string hex_bytes(const uint8_t* p, size_t available) {
  std::string hex;
  for (size_t i = 0; i < std::min<size_t>(available, 10); ++i) {
    static const char digits[] = "0123456789abcdef";
    hex += digits[p[i] >> 4];
    hex += digits[p[i] & 15];
    hex += ' ';
  }
  return hex;
}

// Both table decodings of the bytes at p against Zydis, counted: encodings the sweep's table and the full
// one took, mismatches, and of the sweep's, those sweep_step() stepped over, direct_branch() took and
// plain_length() took.
struct TableCheck {
  size_t plain = 0, full = 0, mismatches = 0, quiet_steps = 0, direct_branches = 0, plain_lengths = 0;
  size_t facts = 0, padding_facts = 0;  // sweep_step()'s facts, of which padding
  void check(const x86::Decoder& decoder, const LookedUp& looked_up, const uint8_t* p, size_t available);
};

// Holds the sweep's table decoding of the bytes at p to Zydis's: where the table takes an instruction, the
// sweep must read the same from both. Returns whether the table took it (the caller counts those); the rest
// is counted in tally.
bool plain_agrees_with_zydis(const x86::Decoder& decoder, const LookedUp& looked_up, const uint8_t* p, size_t available,
                             TableCheck& tally) {
  x86::Insn plain, zydis;
  x86::SweepFacts stepped;
  const int step = decoder.sweep_step(p, available, 0x1000, stepped);
  // Where the sweep notes something, it notes the same as about Zydis's decoding: sweep_step()'s facts are
  // Decoder::facts_of() Zydis's decode_for_sweep(), whether the table gave them or Zydis.
  const bool decoded = decoder.decode_for_sweep_with_zydis(p, available, 0x1000, zydis);
  if (step == 0 && (!decoded || facts_view(stepped, looked_up) != facts_view(decoder.facts_of(zydis), looked_up)) &&
      ++tally.mismatches <= 20)
    MESSAGE("sweep_step's facts disagree: " << hex_bytes(p, available) << "\n  table: "
                                             << facts_view(stepped, looked_up) << "\n  Zydis: "
                                             << (decoded ? facts_view(decoder.facts_of(zydis), looked_up) : "undecodable"));
  if (step == 0 && decoded && !facts_say(decoder.facts_of(zydis), sweep_view(zydis, looked_up), looked_up) &&
      ++tally.mismatches <= 20)
    MESSAGE("facts_of() disagrees with what the sweep reads: " << hex_bytes(p, available));
  if (step < 0 && decoded && ++tally.mismatches <= 20)
    MESSAGE("sweep_step found undecodable what Zydis decodes: " << hex_bytes(p, available));
  if (step == 0) {
    ++tally.facts;
    tally.padding_facts += stepped.padding;
  }
  x86::Decoder::DirectBranch branch;
  const int branch_length = decoder.direct_branch(p, available, 0x1000, branch);
  const int plain_length = decoder.plain_length(p, available);
  if (!decoder.decode_plain(p, available, 0x1000, plain)) {
    // sweep_step() steps over only what the table takes; anything else is decode_for_sweep()'s.
    if (step > 0 && ++tally.mismatches <= 20) MESSAGE("sweep_step stepped over what the table does not take: " << hex_bytes(p, available));
    if (branch_length > 0 && ++tally.mismatches <= 20) MESSAGE("direct_branch took what the table does not: " << hex_bytes(p, available));
    if (plain_length > 0 && ++tally.mismatches <= 20) MESSAGE("plain_length took what the table does not: " << hex_bytes(p, available));
    return false;
  }
  // The literal classification's walk reads the length from plain_length() as from decode_plain().
  if (plain_length > 0 && plain_length != plain.length && ++tally.mismatches <= 20)
    MESSAGE("plain_length " << plain_length << " disagrees: " << hex_bytes(p, available));
  if (plain_length > 0) ++tally.plain_lengths;
  // The sweep reads a direct branch's length, flow and target from direct_branch() as from decode_plain().
  if (branch_length > 0 && (branch_length != plain.length || branch.flow != plain.flow ||
                            branch.has_target != plain.has_target || (branch.has_target && branch.target != plain.target))) {
    if (++tally.mismatches <= 20) MESSAGE("direct_branch disagrees: " << hex_bytes(p, available));
  }
  if (branch_length > 0) ++tally.direct_branches;
  const SweepView a = sweep_view(plain, looked_up), b = sweep_view(zydis, looked_up);
  // Stepped over: the sweep would do nothing with it but go on (no branch, no import slot, no store, no taken
  // address, no padding), whatever it is; otherwise it gives the facts checked above.
  const bool nothing_to_see = b.flow == x86::Flow::normal && !b.padding && !b.mem_rva && b.addresses.empty();
  if (step > 0 ? !nothing_to_see || step != plain.length : step < 0) {
    if (++tally.mismatches <= 20) MESSAGE("sweep_step " << step << " disagrees: " << hex_bytes(p, available));
  }
  if (step > 0) ++tally.quiet_steps;
  if ((!decoded || !(a == b)) && ++tally.mismatches <= 20) {
    const auto show = [](const SweepView& v) {
      std::ostringstream o;
      o << "length " << int(v.length) << " flow " << int(v.flow) << " target " << v.target << " nop/pad/mov/lea "
        << v.nop << v.padding << v.mov << v.lea << " mem_rva " << (v.mem_rva ? std::to_string(*v.mem_rva) : "-")
        << " neg " << v.negative << " mem " << v.mem_found << v.mem_write << int(v.mem_size) << " indirect "
        << int(v.indirect) << " addresses " << v.addresses.size() << " disp " << int(v.disp_bits) << " imm "
        << int(v.imm_offset[0]) << "/" << int(v.imm_size[0]) << "," << int(v.imm_offset[1]) << "/" << int(v.imm_size[1]);
      return o.str();
    };
    MESSAGE((decoder.x64() ? "x64: " : "x86: ")
            << hex_bytes(p, available) << "\n  table: " << show(a) << "\n  Zydis: "
            << (decoded ? show(b) + " " + std::string(ZydisMnemonicGetString(zydis.mnemonic)) : std::string("undecodable")));
  }
  return true;
}

// Every field of an instruction, for the table's full decoding against Zydis's.
std::string describe(const x86::Insn& insn) {
  std::ostringstream o;
  o << std::string(ZydisMnemonicGetString(insn.mnemonic)) << " len " << int(insn.length) << " flow " << int(insn.flow)
    << " target " << insn.has_target << "/" << insn.target << " writes " << insn.gpr_writes << "/" << insn.gpr_partial
    << " mem_rva " << (insn.mem_rva ? std::to_string(*insn.mem_rva) : "-") << " neg " << insn.negative_disp << " imm "
    << int(insn.imm_offset[0]) << "/" << int(insn.imm_size[0]) << "," << int(insn.imm_offset[1]) << "/"
    << int(insn.imm_size[1]) << " disp " << int(insn.disp_bits) << " ops " << int(insn.operand_count);
  for (int i = 0; i < insn.operand_count; ++i) {
    const x86::Operand& op = insn.op[i];
    o << " [k" << int(op.kind) << " s" << int(op.size) << " " << (op.read ? "r" : "") << (op.write ? "w" : "") << " reg"
      << int(op.reg) << " b" << int(op.base) << " i" << int(op.index) << "*" << int(op.scale) << " seg"
      << op.segment_override << " d" << op.disp << " imm" << op.imm << "]";
  }
  return o.str();
}

// Holds the table's full decoding of the bytes at p to Zydis's: where the table takes an instruction, every
// field must be the same. Returns whether the table took it.
bool full_agrees_with_zydis(const x86::Decoder& decoder, const uint8_t* p, size_t available, size_t& mismatches) {
  x86::Insn table, zydis;
  if (!decoder.decode_table(p, available, 0x1000, table)) return false;
  const bool decoded = decoder.decode_with_zydis(p, available, 0x1000, zydis);
  const auto same_operand = [](const x86::Operand& a, const x86::Operand& b) {
    return a.kind == b.kind && a.size == b.size && a.read == b.read && a.write == b.write && a.reg == b.reg &&
           a.base == b.base && a.index == b.index && a.scale == b.scale && a.segment_override == b.segment_override &&
           a.disp == b.disp && a.imm == b.imm;
  };
  const bool same =
      decoded && table.rva == zydis.rva && table.length == zydis.length && table.flow == zydis.flow &&
      table.mnemonic == zydis.mnemonic && table.operand_count == zydis.operand_count &&
      same_operand(table.op[0], zydis.op[0]) && same_operand(table.op[1], zydis.op[1]) &&
      table.target == zydis.target && table.has_target == zydis.has_target && table.gpr_writes == zydis.gpr_writes &&
      table.gpr_partial == zydis.gpr_partial && table.mem_rva == zydis.mem_rva &&
      table.negative_disp == zydis.negative_disp && table.imm_offset[0] == zydis.imm_offset[0] &&
      table.imm_offset[1] == zydis.imm_offset[1] && table.imm_size[0] == zydis.imm_size[0] &&
      table.imm_size[1] == zydis.imm_size[1] && table.disp_bits == zydis.disp_bits;
  static std::map<ZydisMnemonic, int> shown;  // (a few of each mnemonic)
  if (!same && ++mismatches && ++shown[table.mnemonic] <= 2)
    MESSAGE((decoder.x64() ? "x64: " : "x86: ") << hex_bytes(p, available) << "\n  table: " << describe(table)
                                                << "\n  Zydis: " << (decoded ? describe(zydis) : "undecodable"));
  return true;
}

void TableCheck::check(const x86::Decoder& decoder, const LookedUp& looked_up, const uint8_t* p, size_t available) {
  plain += plain_agrees_with_zydis(decoder, looked_up, p, available, *this);
  full += full_agrees_with_zydis(decoder, p, available, mismatches);
}

}  // namespace

TEST_CASE("the table decodings agree with Zydis on every instruction they take") {
  TableCheck tally;
  SUBCASE("every prefix, opcode and ModRM byte, before SIB bytes, displacements and immediates of each kind") {
    // SIB (with a base, with none, with an index), then displacement and immediate bytes: large (an address
    // on x86), small, negative, zero.
    const std::vector<std::vector<uint8_t>> tails = {
        {0x24, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}, {0x25, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88},
        {0xe5, 0x10, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00}, {0x24, 0x10, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00},
        {0x00, 0xf0, 0xff, 0xff, 0xff, 0xf8, 0xff, 0xff, 0xff}, {0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
        {0x24, 0x00, 0x10, 0x40, 0x00, 0x00, 0x10, 0x40, 0x00}};
    struct Mode {
      LookedUp looked_up;
      std::vector<std::vector<uint8_t>> prefixes;
      bool cuts = false;
    };
    const uint64_t all = uint64_t{1} << 32;
    const std::vector<Mode> modes = {
        {{false, 0x400000, all}, {{}, {0x66}, {0x66, 0x66}, {0x2e}, {0x66, 0x2e}, {0xf0}, {0xf3}, {0x67}, {0x26}}, true},
        {{false, 0x400000, 0x20000}, {{}, {0x66}}},
        {{false, 0, all}, {{}, {0x66}}},
        {{false, 0, 0x20000}, {{}}},
        {{true, 0x140000000ull, all}, {{}, {0x66}, {0x66, 0x66, 0x2e}, {0x2e}, {0xf0}, {0xf2}, {0x67}, {0x65}, {0x40}, {0x41},
                                {0x44}, {0x48}, {0x4c}, {0x4f}, {0x66, 0x48}, {0x48, 0x66}, {0x66, 0x41}, {0x42}},
         true},
        {{true, 0x10000, all}, {{}, {0x48}, {0x66}}},
        {{true, 0x10000, 0x20000}, {{}, {0x48}}}};
    for (const Mode& mode : modes) {
      const LookedUp& looked_up = mode.looked_up;
      const x86::Decoder decoder(looked_up.x64, looked_up.image_base, looked_up.span);
      const size_t plain_before = tally.plain, full_before = tally.full;
      for (const std::vector<uint8_t>& prefix : mode.prefixes)
        for (int escape = 0; escape < 2; ++escape)
          for (int opcode = 0; opcode < 256; ++opcode)
            for (int modrm = 0; modrm < 256; ++modrm)
              for (size_t t = 0; t < tails.size(); ++t) {
                std::vector<uint8_t> bytes = prefix;
                if (escape) bytes.push_back(0x0f);
                bytes.push_back(static_cast<uint8_t>(opcode));
                bytes.push_back(static_cast<uint8_t>(modrm));
                bytes.insert(bytes.end(), tails[t].begin(), tails[t].end());
                // With 16 bytes or more after it, sweep_step() takes its quick step where it can; with fewer,
                // the whole one: both are held to Zydis (the cuts below take the whole step too).
                std::vector<uint8_t> padded = bytes;
                padded.resize(std::max<size_t>(bytes.size() + 6, 16), 0xcc);
                tally.check(decoder, looked_up, padded.data(), padded.size());
                if (mode.cuts) tally.check(decoder, looked_up, bytes.data(), bytes.size());
                // Cut short at every length: an instruction running past the end of its section (one
                // mode per architecture: the lengths do not depend on the image base).
                if (t == 3 && mode.cuts)
                  for (size_t cut = 1; cut < bytes.size(); ++cut) tally.check(decoder, looked_up, bytes.data(), cut);
              }
      MESSAGE((looked_up.x64 ? "x64" : "x86") << " at image base " << looked_up.image_base << ", span "
                                              << looked_up.span << ": " << tally.plain - plain_before
                                              << " encodings taken by the sweep's table, " << tally.full - full_before
                                              << " by the full one");
      CHECK(tally.plain - plain_before > 10000);
      CHECK(tally.full - full_before > 10000);
    }
  }
  SUBCASE("every offset of the code of every x86/x64 sample and corpus driver") {
    const std::vector<fs::path> files = test::sample_and_corpus_drivers();
    size_t offsets = 0, sweep_insns = 0, sweep_taken = 0, full_taken = 0;
    for (const fs::path& file : files) {
      auto mapped = MappedFile::open(file.string());
      REQUIRE(mapped);
      auto image = PeImage::load(mapped->view());
      if (!image || (image->machine() != Machine::x86 && image->machine() != Machine::x64)) continue;
      const x86::CodeModel model = x86::model_from_image(*image);
      LookedUp looked_up{model.x64, model.image_base, 0};
      for (const x86::CodeSection& sec : model.sections)
        looked_up.span = std::max<uint64_t>(looked_up.span, uint64_t{sec.rva} + sec.size + 64);
      const x86::Decoder decoder(model.x64, model.image_base, looked_up.span);
      for (const x86::CodeSection& sec : model.sections) {
        if (!sec.executable) continue;
        const size_t n = sec.file_size();
        for (size_t off = 0; off < n; ++off, ++offsets)
          tally.check(decoder, looked_up, sec.bytes.data() + off, n - off);
        // How much of a linear decoding the table takes (the sweep's share).
        for (size_t off = 0; off < n;) {
          x86::Insn insn;
          ++sweep_insns;
          full_taken += decoder.decode_table(sec.bytes.data() + off, n - off, 0, insn);
          if (decoder.decode_plain(sec.bytes.data() + off, n - off, 0, insn)) {
            ++sweep_taken;
            off += insn.length;
          } else {
            off += decoder.decode_for_sweep_with_zydis(sec.bytes.data() + off, n - off, 0, insn) ? insn.length : 1;
          }
        }
      }
    }
    MESSAGE(offsets << " code offsets: " << tally.plain << " taken by the sweep's table, " << tally.full
                    << " by the full one; of the " << sweep_insns << " instructions of a linear sweep, " << sweep_taken
                    << " and " << full_taken);
    CHECK(sweep_taken * 2 > sweep_insns);
    CHECK(full_taken * 2 > sweep_insns);
  }
  CHECK(tally.mismatches == 0);
  MESSAGE(tally.quiet_steps << " of the " << tally.plain << " encodings the sweep's table took were stepped over");
  CHECK(tally.quiet_steps * 4 > tally.plain);
  MESSAGE(tally.direct_branches << " were direct branches the sweep reads without building an instruction");
  CHECK(tally.direct_branches > 0);
  MESSAGE(tally.plain_lengths << " had their length read without decoding their operands");
  CHECK(tally.plain_lengths * 4 > tally.plain);
  MESSAGE(tally.facts << " encodings gave the sweep facts to note, " << tally.padding_facts << " of them padding");
  CHECK(tally.facts > 0);
  CHECK(tally.padding_facts > 0);
}

TEST_CASE("the call sites found keep the first site found at each address, and come out by address") {
  x86::SiteSet sites;
  const auto site = [](uint32_t rva, CallForm form) { return x86::Site{rva, nullptr, form, false, false}; };
  // Found out of order, with repeats: the sweep's own sites, then thunk callers.
  for (uint32_t rva : {0x500u, 0x100u, 0x300u, 0x100u}) sites.add(site(rva, rva == 0x100 ? CallForm::iat : CallForm::tail));
  sites.add(site(0x300, CallForm::thunk));
  sites.settle();
  CHECK(sites.has(0x100));
  CHECK(sites.has(0x500));
  CHECK_FALSE(sites.has(0x200));
  // Found after settling (call reg, KMDF): new addresses are added, known ones keep their first site.
  sites.add(site(0x200, CallForm::reg));
  sites.add(site(0x200, CallForm::tail));
  sites.add(site(0x300, CallForm::reg));
  sites.add(site(0x600, CallForm::reg));
  CHECK(sites.has(0x200));
  const std::vector<x86::Site> all = sites.take();
  std::vector<std::pair<uint32_t, CallForm>> got;
  for (const x86::Site& s : all) got.emplace_back(s.rva, s.form);
  const std::vector<std::pair<uint32_t, CallForm>> expected = {
      {0x100, CallForm::iat}, {0x200, CallForm::reg}, {0x300, CallForm::tail}, {0x500, CallForm::tail}, {0x600, CallForm::reg}};
  CHECK(got == expected);
}
