/*
 * tagwho test corpus, wrapper patterns: tags that reach a tag-taking API
 * through the parameters of other functions (1, 2 and 3 levels deep, tail
 * jumps, a stack parameter), tags chosen by a conditional, and tags loaded
 * from read-only data or from a global that is never written.  Expected
 * facts: the table in generate.sh (expect "wrapper" = reported as wrapper or
 * call; "call" = reported as call; "decoy" = never reported as either).
 *
 * Wrappers have external linkage (no interprocedural constant propagation:
 * the compiler must assume other callers) and are noinline; w_free_two is
 * static so that 32-bit compilers may give it a register convention.
 */
#include "tagwho_kernel.h"

#if defined(__i386__) && (defined(__GNUC__) || defined(__clang__))
#define TW_FASTCALL __attribute__((fastcall))
#else
#define TW_FASTCALL
#endif
#if defined(__GNUC__) && !defined(__clang__)
#define TW_NOCLONE __attribute__((noclone))
#else
#define TW_NOCLONE
#endif
#define TW_WRAPPER TW_NOINLINE TW_NOCLONE

extern PVOID volatile g_sink[32];
extern volatile ULONG g_count;

volatile ULONG g_wrap_hits;
PVOID volatile g_wsink[16];
NPAGED_LOOKASIDE_LIST g_wlist;

/* A tag in a global variable that no code ever writes (external linkage: the
 * compiler cannot fold it, so every build loads it). */
ULONG g_never_written_tag = TAG4('G','l','N','w');

/* Decoy: a tag-like initial value ('D','G','w','r') in a global that is
 * written before the allocation: never reported with its initial value. */
ULONG g_written_tag = 0x72774744;

/* A static const table of tags: const volatile, so every build loads the
 * entry (clang puts it in .rdata, GCC in .data, where it is never written).
 * Entry 0 ('D','T','b','0') is a decoy: never loaded. */
static const volatile ULONG k_rdata_tags[2] = {
    0x30625444,
    TAG4('R','o','C','n'),
};

/* Level 1: the parameter goes straight to ExAllocatePoolWithTag (at -O1+ on
 * x64 this is itself a tail jump: jmp [iat]). */
TW_WRAPPER PVOID w_alloc1(SIZE_T size, ULONG tag)
{
    return ExAllocatePoolWithTag(NonPagedPoolNx, size, tag);
}

/* Level 2: through w_alloc1, not in tail position. */
TW_WRAPPER PVOID w_alloc2(SIZE_T size, ULONG tag)
{
    PVOID p = w_alloc1(size + 16, tag);

    if (p != 0)
        g_wrap_hits++;
    return p;
}

/* Level 3. */
TW_WRAPPER PVOID w_alloc3(ULONG tag, SIZE_T size)
{
    PVOID p = w_alloc2(size, tag);

    g_wrap_hits += 2;
    return p;
}

/* A wrapper that tail-calls another wrapper with its arguments in place. */
TW_WRAPPER PVOID w_tail(SIZE_T size, ULONG tag)
{
    return w_alloc1(size, tag);
}

/* The tag is this wrapper's 5th parameter (on the stack on x64 too) and the
 * 6th argument of the lookaside initialiser. */
TW_WRAPPER void w_lookaside(PNPAGED_LOOKASIDE_LIST list, ULONG flags,
                            SIZE_T size, USHORT depth, ULONG tag)
{
    ExInitializeNPagedLookasideList(list, 0, 0, flags, size, tag, depth);
    g_wrap_hits++;
}

/* Used with two different tags; static, so 32-bit compilers may pass its
 * arguments in registers. */
static TW_WRAPPER void w_free_two(PVOID p, ULONG tag)
{
    if (p != 0)
        ExFreePoolWithTag(p, tag);
    g_wrap_hits++;
}

/* x86 __fastcall wrapper (ecx, edx); an ordinary function on x64. */
TW_WRAPPER PVOID TW_FASTCALL w_fast(SIZE_T size, ULONG tag)
{
    PVOID p = ExAllocatePoolWithTag(PagedPool, size, tag);

    g_wrap_hits++;
    return p;
}

/* Inlined wrapper: the tag is a constant at the real call. */
static inline __attribute__((always_inline)) PVOID w_inline(ULONG tag)
{
    return ExAllocatePoolWithTag(NonPagedPoolNx, 0x28, tag);
}

/* Decoy: a ULONG parameter that only reaches DbgPrint and a counter. */
TW_WRAPPER void d_not_a_tag(ULONG value)
{
    g_wrap_hits += value;
    DbgPrint("tagwho corpus: %lu\n", value);
}

/* Decoy: the parameter is the size, not the tag ('W','r','S','z' is a call). */
TW_WRAPPER PVOID d_size_param(SIZE_T size)
{
    return ExAllocatePoolWithTag(NonPagedPoolNx, size, TAG4('W','r','S','z'));
}

TW_NOINLINE void p_wrappers(void)
{
    PVOID p;

    g_wsink[0] = w_alloc1(0x40, TAG4('W','r','A','1'));
    g_wsink[1] = w_alloc2(0x50, TAG4('W','r','A','2'));
    g_wsink[2] = w_alloc3(TAG4('W','r','A','3'), 0x60);
    g_wsink[3] = w_tail(0x70, TAG4('W','r','T','l'));
    w_lookaside(&g_wlist, 0, 0x90, 4, TAG4('W','r','L','k'));
    p = g_wsink[4];
    w_free_two(p, TAG4('W','r','F','1'));
    p = g_wsink[5];
    w_free_two(p, TAG4('W','r','F','2'));
    g_wsink[6] = w_fast(0x30, TAG4('W','r','F','c'));
    g_wsink[7] = w_inline(TAG4('I','n','l','W'));
    d_not_a_tag(0x6d725044);            /* 'D','P','r','m' */
    g_wsink[8] = d_size_param(0x7a695344);  /* 'D','S','i','z' */
}

/* Conditionals: both values, at a direct call and through a wrapper. */
TW_NOINLINE void p_conditional(void)
{
    g_wsink[9] = ExAllocatePoolWithTag(PagedPool, 0x20,
                                       (g_count & 1) ? TAG4('C','d','C','a')
                                                     : TAG4('Q','z','C','b'));
    g_wsink[10] = w_alloc1(0x30, (g_count & 2) ? TAG4('C','d','W','a')
                                               : TAG4('Y','x','W','b'));
}

/* Tags loaded from memory: read-only data and a global never written. */
TW_NOINLINE void p_loaded(void)
{
    g_written_tag = g_count;
    g_wsink[11] = ExAllocatePoolWithTag(NonPagedPoolNx, 0x38, k_rdata_tags[1]);
    g_wsink[12] = ExAllocatePoolWithTag(NonPagedPoolNx, 0x48, g_never_written_tag);
    g_wsink[13] = ExAllocatePoolWithTag(NonPagedPoolNx, 0x58, g_written_tag);
    g_wsink[14] = w_alloc1(0x68, g_never_written_tag + 0);
}
