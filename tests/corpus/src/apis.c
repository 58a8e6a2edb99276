/*
 * tagwho test corpus, every other tag-taking API: ExAllocatePool3, the
 * LookasideListEx initialiser (7th argument), the remove lock, fltmgr.sys,
 * ndis.sys and videoprt.sys, the untagged ExAllocatePool ('None'), a
 * PROTECTED_POOL tag, object-reference tags (reported as objref, never as
 * pool tags), KMDF calls through the WdfFunctions table, and decoys passed
 * to APIs that take no tag.  Expected facts: the table in generate.sh.
 */
#include "tagwho_corpus.h"

extern PVOID volatile g_sink[32];
extern volatile ULONG g_count;

PVOID volatile g_asink[32];
volatile ULONG g_astatus;
LOOKASIDE_LIST_EX g_exlist;
IO_REMOVE_LOCK g_remlock;
KEVENT g_event;
PVOID volatile g_object;
HANDLE volatile g_handle;
PFLT_INSTANCE volatile g_instance;
NDIS_HANDLE volatile g_ndis;
PVOID volatile g_hwext;

/* KMDF: the table pointer and globals WdfVersionBind fills in. */
WDFFUNC *WdfFunctions_01015;
PVOID WdfDriverGlobals;
static WDF_BIND_INFO g_bind = {
    sizeof(WDF_BIND_INFO), 0, 1, 15, 0, 444, &WdfFunctions_01015, 0
};

TW_NOINLINE void a_pool3(void)
{
    g_asink[0] = ExAllocatePool3(POOL_FLAG_NON_PAGED, 0x90, TAG4('P','l','3','a'), 0, 0);
}

/* 7th argument: on the stack on x64 ([rsp+0x30]), x6 on ARM64. */
TW_NOINLINE void a_lookaside_ex(void)
{
    g_astatus = (ULONG)ExInitializeLookasideListEx(&g_exlist, 0, 0, NonPagedPoolNx, 0,
                                                   0x120, TAG4('L','k','E','x'), 0);
}

TW_NOINLINE void a_remove_lock(void)
{
    IoInitializeRemoveLockEx(&g_remlock, TAG4('R','m','L','k'), 0, 0, sizeof(IO_REMOVE_LOCK));
}

/* One function per API: compilers derive a tag from another tag of the same
 * function that shares its low half (add w2, w21, #0x50, lsl #12). */
TW_NOINLINE void a_flt_alloc(void)
{
    g_asink[1] = FltAllocatePoolAlignedWithTag(g_instance, NonPagedPoolNx, 0x200,
                                               TAG4('F','l','t','A'));
}

TW_NOINLINE void a_flt_free(void)
{
    if (g_count & 8)
        FltFreePoolAlignedWithTag(g_instance, g_asink[2], TAG4('F','l','t','F'));
}

TW_NOINLINE void a_ndis_alloc(void)
{
    PVOID p = 0;

    g_astatus = (ULONG)NdisAllocateMemoryWithTag(&p, 0x64, TAG4('N','d','A','l'));
    g_asink[3] = p;
}

TW_NOINLINE void a_ndis_alloc_priority(void)
{
    g_asink[4] = NdisAllocateMemoryWithTagPriority(g_ndis, 0x74, TAG4('N','d','A','p'),
                                                   NormalPoolPriority);
}

TW_NOINLINE void a_ndis_free(void)
{
    NdisFreeMemoryWithTag(g_asink[5], TAG4('N','d','F','r'));
}

TW_NOINLINE void a_ndis_free_priority(void)
{
    NdisFreeMemoryWithTagPriority(g_ndis, g_asink[6], TAG4('N','d','F','p'));
}

TW_NOINLINE void a_videoport(void)
{
    g_asink[7] = VideoPortAllocatePool(g_hwext, VpPagedPool, 0x84, TAG4('V','p','A','l'));
}

/* Untagged allocators: the kernel tags these 'None'.  Decoy: 'D','U','s','z'
 * is the size of an untagged allocation, not a tag. */
TW_NOINLINE void a_untagged(void)
{
    g_asink[8] = ExAllocatePool(NonPagedPoolNx, 0x94);
    g_asink[9] = ExAllocatePoolWithQuota(PagedPool, 0x7a735544);
}

/* PROTECTED_POOL: the tag is reported without the high bit. */
TW_NOINLINE void a_protected(void)
{
    g_asink[10] = ExAllocatePoolWithTag(NonPagedPoolNx, 0xa4,
                                        TAG4('P','r','o','t') | PROTECTED_POOL);
}

/* Object-reference tags: objref, never pool tags (one function each, as above). */
TW_NOINLINE void a_ob_by_handle(void)
{
    PVOID object = 0;

    g_astatus = (ULONG)ObReferenceObjectByHandleWithTag(g_handle, 1, 0, UserMode,
                                                        TAG4('O','b','H','d'), &object, 0);
    g_asink[11] = object;
}

TW_NOINLINE void a_ob_by_pointer(void)
{
    g_astatus = (ULONG)ObReferenceObjectByPointerWithTag(g_object, 1, 0, UserMode,
                                                         TAG4('O','b','P','t'));
}

TW_NOINLINE void a_ob_reference(void)
{
    ObReferenceObjectWithTag(g_object, TAG4('O','b','R','f'));
}

TW_NOINLINE void a_ob_dereference(void)
{
    ObDereferenceObjectWithTag(g_object, TAG4('O','b','D','f'));
}

TW_NOINLINE void a_ob_defer_delete(void)
{
    ObDereferenceObjectDeferDeleteWithTag(g_object, TAG4('O','b','D','d'));
}

/* Decoys: tag-like constants passed to APIs that take no tag. */
TW_NOINLINE void a_decoys(void)
{
    g_astatus = (ULONG)KeSetEvent(&g_event, 0x65734b44, 0);   /* 'D','K','s','e' */
    DbgPrint("tagwho corpus: %lx\n", 0x67624444UL);          /* 'D','D','b','g' */
}

/* KMDF: WdfVersionBind fills WdfFunctions_01015 through g_bind.FuncTable;
 * the FORCEINLINE Wdf* functions call through the table. */
TW_NOINLINE NTSTATUS a_kmdf_bind(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
    return WdfVersionBind(driver, path, &g_bind, &WdfDriverGlobals);
}

TW_NOINLINE void a_kmdf_memory(void)
{
    PVOID memory = 0;

    g_astatus = (ULONG)WdfMemoryCreate(0, NonPagedPoolNx, TAG4('W','d','M','c'), 0x40,
                                       &memory, 0);
    g_asink[12] = memory;
}

TW_NOINLINE void a_kmdf_lookaside(void)
{
    PVOID lookaside = 0;

    g_astatus = (ULONG)WdfLookasideListCreate(0, 0x50, PagedPool, 0, TAG4('W','d','L','l'),
                                              &lookaside);
    g_asink[13] = lookaside;
}

/* Decoy: the same calling sequence at another index (193,
 * WdfMemoryCreatePreallocated: no tag there) with 'D','W','p','r'. */
TW_NOINLINE void a_kmdf_decoy(void)
{
    PVOID memory = 0;

    g_astatus = (ULONG)((PFN_WDFMEMORYCREATE)WdfFunctions_01015[193])(
        WdfDriverGlobals, 0, NonPagedPoolNx, 0x72705744, 0x60, &memory, 0);
    g_asink[14] = memory;
}

void a_all(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
    if (a_kmdf_bind(driver, path) != STATUS_SUCCESS)
        return;
    a_pool3();
    a_lookaside_ex();
    a_remove_lock();
    a_flt_alloc();
    a_flt_free();
    a_ndis_alloc();
    a_ndis_alloc_priority();
    a_ndis_free();
    a_ndis_free_priority();
    a_videoport();
    a_untagged();
    a_protected();
    a_ob_by_handle();
    a_ob_by_pointer();
    a_ob_reference();
    a_ob_dereference();
    a_ob_defer_delete();
    a_decoys();
    a_kmdf_memory();
    a_kmdf_lookaside();
    a_kmdf_decoy();
}
