/*
 * tagwho test corpus, thunk pattern: compiled with -DTAGWHO_NO_DLLIMPORT so
 * the kernel API is declared without __declspec(dllimport); the call goes to
 * the import-library thunk `jmp [IAT]` that the linker emits.
 */
#include "tagwho_kernel.h"

extern PVOID volatile g_sink[32];

TW_NOINLINE void p_thunk(void)
{
    g_sink[22] = ExAllocatePoolWithTag(NonPagedPoolNx, 0xd8, TAG4('T','h','n','k'));
}
