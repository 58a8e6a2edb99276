/*
 * tagwho_corpus.h - declarations the test corpus needs beyond the samples'
 * tagwho_kernel.h: the other tag-taking APIs of ntoskrnl, fltmgr.sys,
 * ndis.sys and videoprt.sys, the object-reference (Ob*WithTag) APIs, the
 * untagged allocators, and a simulation of the KMDF function table.
 * Self-written from the DDI prototypes (see
 * ../shared/formats/api_tag_positions.tsv); not derived from the WDK.
 */
#ifndef TAGWHO_CORPUS_H
#define TAGWHO_CORPUS_H

#include "tagwho_kernel.h"

#if defined(_M_IX86) || defined(__i386__)
#define FASTCALL __fastcall
#else
#define FASTCALL
#endif

typedef void *HANDLE, *NDIS_HANDLE, *PFLT_INSTANCE;
typedef ULONG ACCESS_MASK;
typedef CHAR KPROCESSOR_MODE;
typedef LONG KPRIORITY;
typedef struct _OBJECT_TYPE *POBJECT_TYPE;
typedef struct _KEVENT { ULONG Opaque[6]; } KEVENT, *PRKEVENT;
typedef struct _IO_REMOVE_LOCK { PVOID Opaque[12]; } IO_REMOVE_LOCK, *PIO_REMOVE_LOCK;
typedef struct _TW_LOOKASIDE LOOKASIDE_LIST_EX, *PLOOKASIDE_LIST_EX;
typedef PVOID (NTAPI *PALLOCATE_FUNCTION_EX)(POOL_TYPE, SIZE_T, ULONG, PLOOKASIDE_LIST_EX);
typedef VOID (NTAPI *PFREE_FUNCTION_EX)(PVOID, PLOOKASIDE_LIST_EX);
typedef int VP_POOL_TYPE;
#define VpPagedPool 1
#define PROTECTED_POOL 0x80000000UL
#define UserMode 1

/* ntoskrnl.exe */
NTKERNELAPI PVOID NTAPI ExAllocatePool3(POOL_FLAGS Flags, SIZE_T NumberOfBytes,
                                        ULONG Tag, const void *ExtendedParameters,
                                        ULONG ExtendedParametersCount);   /* 3 */
NTKERNELAPI NTSTATUS NTAPI ExInitializeLookasideListEx(
    PLOOKASIDE_LIST_EX Lookaside, PALLOCATE_FUNCTION_EX Allocate,
    PFREE_FUNCTION_EX Free, POOL_TYPE PoolType, ULONG Flags, SIZE_T Size,
    ULONG Tag, USHORT Depth);                                           /* 7 */
NTKERNELAPI VOID NTAPI IoInitializeRemoveLockEx(PIO_REMOVE_LOCK Lock,
    ULONG AllocateTag, ULONG MaxLockedMinutes, ULONG HighWatermark,
    ULONG RemlockSize);                                                 /* 2 */
/* Untagged: the kernel tags these allocations 'None'. */
NTKERNELAPI PVOID NTAPI ExAllocatePool(POOL_TYPE PoolType, SIZE_T NumberOfBytes);
NTKERNELAPI PVOID NTAPI ExAllocatePoolWithQuota(POOL_TYPE PoolType, SIZE_T NumberOfBytes);
/* Object-reference tags (not pool tags). */
NTKERNELAPI NTSTATUS NTAPI ObReferenceObjectByHandleWithTag(HANDLE Handle,
    ACCESS_MASK DesiredAccess, POBJECT_TYPE ObjectType, KPROCESSOR_MODE AccessMode,
    ULONG Tag, PVOID *Object, PVOID HandleInformation);                 /* 5 */
NTKERNELAPI NTSTATUS NTAPI ObReferenceObjectByPointerWithTag(PVOID Object,
    ACCESS_MASK DesiredAccess, POBJECT_TYPE ObjectType, KPROCESSOR_MODE AccessMode,
    ULONG Tag);                                                         /* 5 */
NTKERNELAPI SIZE_T FASTCALL ObfReferenceObjectWithTag(PVOID Object, ULONG Tag);   /* 2 */
NTKERNELAPI SIZE_T FASTCALL ObfDereferenceObjectWithTag(PVOID Object, ULONG Tag); /* 2 */
NTKERNELAPI VOID NTAPI ObDereferenceObjectDeferDeleteWithTag(PVOID Object, ULONG Tag); /* 2 */
#define ObReferenceObjectWithTag ObfReferenceObjectWithTag
#define ObDereferenceObjectWithTag ObfDereferenceObjectWithTag
/* Not tag-taking. */
NTKERNELAPI LONG NTAPI KeSetEvent(PRKEVENT Event, KPRIORITY Increment, BOOLEAN Wait);

/* fltmgr.sys */
NTKERNELAPI PVOID NTAPI FltAllocatePoolAlignedWithTag(PFLT_INSTANCE Instance,
    POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);               /* 4 */
NTKERNELAPI VOID NTAPI FltFreePoolAlignedWithTag(PFLT_INSTANCE Instance,
    PVOID Buffer, ULONG Tag);                                           /* 3 */

/* ndis.sys */
NTKERNELAPI NTSTATUS NTAPI NdisAllocateMemoryWithTag(PVOID *VirtualAddress,
    unsigned int Length, ULONG Tag);                                    /* 3 */
NTKERNELAPI PVOID NTAPI NdisAllocateMemoryWithTagPriority(NDIS_HANDLE NdisHandle,
    unsigned int Length, ULONG Tag, EX_POOL_PRIORITY Priority);          /* 3 */
NTKERNELAPI VOID NTAPI NdisFreeMemoryWithTag(PVOID VirtualAddress, ULONG Tag); /* 2 */
NTKERNELAPI VOID NTAPI NdisFreeMemoryWithTagPriority(NDIS_HANDLE NdisHandle,
    PVOID VirtualAddress, ULONG Tag);                                   /* 3 */

/* videoprt.sys */
NTKERNELAPI PVOID NTAPI VideoPortAllocatePool(PVOID HwDeviceExtension,
    VP_POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);            /* 4 */

/*
 * KMDF (wdfldr.sys): WdfVersionBind fills the driver's WdfFunctions table
 * (through the FuncTable pointer of the bind info); the FORCEINLINE Wdf*
 * functions call through it with DriverGlobals prepended.  Indexes from
 * wdffuncenum.h: WdfMemoryCreateTableIndex 192, WdfLookasideListCreate 198.
 */
typedef void (*WDFFUNC)(void);
typedef struct _WDF_BIND_INFO {
    ULONG Size;
    const unsigned short *Component;
    ULONG Major, Minor, Build;
    ULONG FuncCount;
    WDFFUNC **FuncTable;
    PVOID Module;
} WDF_BIND_INFO, *PWDF_BIND_INFO;
NTKERNELAPI NTSTATUS NTAPI WdfVersionBind(PDRIVER_OBJECT DriverObject,
    PUNICODE_STRING RegistryPath, PWDF_BIND_INFO BindInfo, PVOID *ComponentGlobals);

extern WDFFUNC *WdfFunctions_01015;
extern PVOID WdfDriverGlobals;
#define WdfMemoryCreateTableIndex 192
#define WdfLookasideListCreateTableIndex 198
typedef NTSTATUS (NTAPI *PFN_WDFMEMORYCREATE)(PVOID DriverGlobals, PVOID Attributes,
    POOL_TYPE PoolType, ULONG PoolTag, SIZE_T BufferSize, PVOID *Memory, PVOID *Buffer);
typedef NTSTATUS (NTAPI *PFN_WDFLOOKASIDELISTCREATE)(PVOID DriverGlobals,
    PVOID LookasideAttributes, SIZE_T BufferSize, POOL_TYPE PoolType,
    PVOID MemoryAttributes, ULONG PoolTag, PVOID *Lookaside);
static inline __attribute__((always_inline)) NTSTATUS
WdfMemoryCreate(PVOID Attributes, POOL_TYPE PoolType, ULONG PoolTag, SIZE_T BufferSize,
                PVOID *Memory, PVOID *Buffer)
{
    return ((PFN_WDFMEMORYCREATE)WdfFunctions_01015[WdfMemoryCreateTableIndex])(
        WdfDriverGlobals, Attributes, PoolType, PoolTag, BufferSize, Memory, Buffer);
}
static inline __attribute__((always_inline)) NTSTATUS
WdfLookasideListCreate(PVOID LookasideAttributes, SIZE_T BufferSize, POOL_TYPE PoolType,
                       PVOID MemoryAttributes, ULONG PoolTag, PVOID *Lookaside)
{
    return ((PFN_WDFLOOKASIDELISTCREATE)WdfFunctions_01015[WdfLookasideListCreateTableIndex])(
        WdfDriverGlobals, LookasideAttributes, BufferSize, PoolType, MemoryAttributes, PoolTag,
        Lookaside);
}

#endif /* TAGWHO_CORPUS_H */
