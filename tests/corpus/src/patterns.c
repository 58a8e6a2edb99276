/*
 * tagwho test corpus: one call-site pattern per function, each with its own
 * tag.  Compiled by tests/corpus/generate.sh for {clang-msvc, mingw-gcc} x
 * {x86, x64} x {-O0, -O1, -O2, -Os}; the expected facts are in the table in
 * generate.sh (truth.tsv).  Every tag passed to a tag-taking API is written
 * as TAG4 of four quoted characters; decoys are written in any other way.
 *
 * Kernel APIs here are __declspec(dllimport): calls are `call [IAT]`, or
 * `mov reg, [IAT]` + `call reg` when the compiler hoists the IAT load.
 * The thunk pattern (jmp [IAT]) lives in thunk.c, built without dllimport.
 */
#include "tagwho_kernel.h"

PVOID volatile g_sink[32];
volatile ULONG g_count = 5;
volatile ULONG g_size = 0x100;
volatile ULONG64 g_flags = POOL_FLAG_PAGED | POOL_FLAG_UNINITIALIZED;
volatile ULONG g_hits;
volatile ULONG g_word;
PCSTR volatile g_msg;
NPAGED_LOOKASIDE_LIST g_nlist;
PAGED_LOOKASIDE_LIST g_plist;

/* Decoy bytes in .data: 'D','D','a','t' -- a tag-like value never passed to
 * any pool API. */
volatile ULONG g_data_decoy = 0x74614444;

void p_thunk(void); /* thunk.c */
void a_all(PDRIVER_OBJECT driver, PUNICODE_STRING path); /* apis.c */

/* const: constant tag straight at the call. */
TW_NOINLINE void p_const(void)
{
    g_sink[0] = ExAllocatePoolWithTag(NonPagedPool, 0x30, TAG4('C','n','s','t'));
}

/* loop: the call sits in a loop over a volatile count. */
TW_NOINLINE void p_loop(void)
{
    ULONG i, n = g_count;

    for (i = 0; i < n; i++)
        g_sink[1 + (i & 3)] =
            ExAllocatePoolWithTag(NonPagedPoolNx, 0x48, TAG4('L','p','C','t'));
}

/* loop-callee-saved: the empty asm makes the tag opaque to the optimiser, so
 * at -O1+ it is set once before the loop and kept in a callee-saved register
 * (no rematerialisation as an immediate at the call). */
TW_NOINLINE void p_loop_reg(void)
{
    ULONG i, n = g_count;
    ULONG tag = TAG4('L','p','R','g');

    __asm__ __volatile__("" : "+r"(tag));
    for (i = 0; i < n; i++)
        g_sink[5 + (i & 3)] = ExAllocatePoolWithTag(PagedPool, 0x58, tag);
}

/* multi-call: the same import called several times from one function; clang
 * -O1+ loads the IAT slot once into a register and calls through it. */
TW_NOINLINE void p_multi(void)
{
    g_sink[9] = ExAllocatePoolWithTag(NonPagedPoolNx, 0x110, TAG4('M','u','l','1'));
    g_sink[10] = ExAllocatePoolWithTag(PagedPool, 0x120, TAG4('M','u','l','2'));
    g_sink[11] = ExAllocatePoolWithTag(NonPagedPoolCacheAligned, 0x130,
                                       TAG4('M','u','l','3'));
}

TW_NOINLINE void p_quota(void)
{
    g_sink[12] = ExAllocatePoolWithQuotaTag(
        (POOL_TYPE)(PagedPool | POOL_QUOTA_FAIL_INSTEAD_OF_RAISE), 0x68,
        TAG4('Q','u','o','t'));
}

TW_NOINLINE void p_priority(void)
{
    g_sink[13] = ExAllocatePoolWithTagPriority(NonPagedPoolNx, 0x78,
                                               TAG4('P','r','i','o'),
                                               HighPoolPriority);
}

/* ExAllocatePool2: 64-bit flags; on x86 they take two stack slots, so the
 * tag is the 4th dword pushed. */
TW_NOINLINE void p_pool2_const(void)
{
    g_sink[14] = ExAllocatePool2(POOL_FLAG_NON_PAGED, 0x88, TAG4('P','l','2','a'));
}

TW_NOINLINE void p_pool2_var(void)
{
    g_sink[15] = ExAllocatePool2(g_flags, g_size, TAG4('P','l','2','b'));
}

TW_NOINLINE void p_free(void)
{
    PVOID p = g_sink[16];

    if (p != 0)
        ExFreePoolWithTag(p, TAG4('F','r','e','e'));
}

/* Lookaside lists: tag is the 6th argument, on the stack on x64 too. */
TW_NOINLINE void p_lookaside_npaged(void)
{
    ExInitializeNPagedLookasideList(&g_nlist, 0, 0, 0, 0x98,
                                    TAG4('L','k','N','p'), 0);
}

TW_NOINLINE void p_lookaside_paged(void)
{
    ExInitializePagedLookasideList(&g_plist, 0, 0, 0, 0xa8,
                                   TAG4('L','k','P','g'), 4);
}

/* PAGE section: lld-link places it after .rdata (where the IAT is), so on
 * x64 the IAT is reached with a negative RIP displacement. */
TW_NOINLINE TW_SECTION("PAGE") void p_page(void)
{
    g_sink[17] = ExAllocatePoolWithTag(PagedPool, 0xb8, TAG4('P','g','C','l'));
}

TW_NOINLINE TW_SECTION("PAGE") void p_page_loop(void)
{
    ULONG i, n = g_count;

    for (i = 0; i < n; i++)
        g_sink[18 + (i & 3)] = ExAllocatePoolWithQuotaTag(
            PagedPool, 0xc8, TAG4('P','g','L','p'));
}

/* Decoy: 'D','S','t','r' inside a string literal (.rdata). */
TW_NOINLINE void d_string(void)
{
    g_msg = "corpus: DStr appears only in this message";
}

/* Decoy: 'D','C','m','p' (0x706d4344) is only compared, never allocated. */
TW_NOINLINE void d_compare(void)
{
    if (*(volatile ULONG *)&g_word == 0x706d4344)
        g_hits++;
}

/* Decoy: 'D','S','t','k' as a local character array. */
TW_NOINLINE void d_consume(const volatile char *s)
{
    g_hits += (ULONG)s[1];
}

TW_NOINLINE void d_stack_string(void)
{
    volatile char buf[8] = { 'D', 'S', 't', 'k', '-', 'x', 0, 0 };

    d_consume(buf);
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject,
                           PUNICODE_STRING RegistryPath)
{
    (void)DriverObject;
    (void)RegistryPath;
    p_const();
    p_loop();
    p_loop_reg();
    p_multi();
    p_quota();
    p_priority();
    p_pool2_const();
    p_pool2_var();
    p_free();
    p_lookaside_npaged();
    p_lookaside_paged();
    p_page();
    p_page_loop();
    p_thunk();
    a_all(DriverObject, RegistryPath);
    d_string();
    d_compare();
    d_stack_string();
    g_hits += g_data_decoy;
    return STATUS_SUCCESS;
}
