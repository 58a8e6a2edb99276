/*
 * tagwho_kernel.h - minimal, self-written kernel declarations for the tagwho
 * sample drivers and test corpus.  Not derived from the WDK; only what the
 * samples use.  Builds identically with clang (--target=*-pc-windows-msvc)
 * and mingw-w64 gcc, for x86 and x64.
 *
 * Define TAGWHO_NO_DLLIMPORT before including to declare the kernel APIs
 * without __declspec(dllimport): calls then go through the import-library
 * thunk (jmp [IAT]) instead of call [IAT].
 */
#ifndef TAGWHO_KERNEL_H
#define TAGWHO_KERNEL_H

/* Basic types (Windows is LLP64: long is 32-bit on both arches). */
typedef void VOID, *PVOID;
typedef unsigned char UCHAR, BOOLEAN;
typedef unsigned short USHORT;
typedef unsigned long ULONG, *PULONG;
typedef long LONG, NTSTATUS;
typedef unsigned long long ULONG64;
typedef __SIZE_TYPE__ SIZE_T;
typedef char CHAR;
typedef const char *PCSTR;

#define STATUS_SUCCESS ((NTSTATUS)0x00000000L)
#define STATUS_INSUFFICIENT_RESOURCES ((NTSTATUS)0xC000009AL)

/* Calling convention: kernel APIs are __stdcall on x86 (ignored on x64). */
#if defined(_M_IX86) || defined(__i386__)
#define NTAPI __stdcall
#else
#define NTAPI
#endif

#ifdef TAGWHO_NO_DLLIMPORT
#define NTKERNELAPI
#else
#define NTKERNELAPI __declspec(dllimport)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TW_NOINLINE __attribute__((noinline))
#define TW_SECTION(s) __attribute__((section(s)))
#else
#define TW_NOINLINE __declspec(noinline)
#define TW_SECTION(s) __declspec(code_seg(s))
#endif

/*
 * Pool tag as poolmon shows it: tag "Leak" is the ULONG 0x6b61654c
 * (bytes 'L','e','a','k' in memory order), i.e. TAG4 of L,e,a,k.
 * Use this macro ONLY for tags really passed to a tag-taking API: the tests
 * collect each sample's expected tags from its own source by matching TAG4
 * applied to four quoted characters; write decoys any other way.
 */
#define TAG4(a, b, c, d) \
    ((ULONG)(a) | ((ULONG)(b) << 8) | ((ULONG)(c) << 16) | ((ULONG)(d) << 24))

/* Opaque kernel objects. */
typedef struct _DRIVER_OBJECT DRIVER_OBJECT, *PDRIVER_OBJECT;
typedef struct _UNICODE_STRING {
    USHORT Length;
    USHORT MaximumLength;
    unsigned short *Buffer;
} UNICODE_STRING, *PUNICODE_STRING;

/* POOL_TYPE (legacy allocators). */
typedef enum _POOL_TYPE {
    NonPagedPool = 0,
    NonPagedPoolExecute = 0,
    PagedPool = 1,
    NonPagedPoolMustSucceed = 2,
    NonPagedPoolCacheAligned = 4,
    PagedPoolCacheAligned = 5,
    NonPagedPoolSession = 32,
    PagedPoolSession = 33,
    NonPagedPoolNx = 512,
    NonPagedPoolNxCacheAligned = 516,
    NonPagedPoolSessionNx = 544
} POOL_TYPE;

#define POOL_QUOTA_FAIL_INSTEAD_OF_RAISE 8
#define POOL_RAISE_IF_ALLOCATION_FAILURE 16

typedef enum _EX_POOL_PRIORITY {
    LowPoolPriority = 0,
    LowPoolPrioritySpecialPoolOverrun = 8,
    LowPoolPrioritySpecialPoolUnderrun = 9,
    NormalPoolPriority = 16,
    NormalPoolPrioritySpecialPoolOverrun = 24,
    NormalPoolPrioritySpecialPoolUnderrun = 25,
    HighPoolPriority = 32,
    HighPoolPrioritySpecialPoolOverrun = 40,
    HighPoolPrioritySpecialPoolUnderrun = 41
} EX_POOL_PRIORITY;

/* POOL_FLAGS (ExAllocatePool2); a 64-bit value even on x86. */
typedef ULONG64 POOL_FLAGS;
#define POOL_FLAG_USE_QUOTA         0x0000000000000001ULL
#define POOL_FLAG_UNINITIALIZED     0x0000000000000002ULL
#define POOL_FLAG_SESSION           0x0000000000000004ULL
#define POOL_FLAG_CACHE_ALIGNED     0x0000000000000008ULL
#define POOL_FLAG_RAISE_ON_FAILURE  0x0000000000000020ULL
#define POOL_FLAG_NON_PAGED         0x0000000000000040ULL
#define POOL_FLAG_NON_PAGED_EXECUTE 0x0000000000000080ULL
#define POOL_FLAG_PAGED             0x0000000000000100ULL

/* Lookaside lists: opaque storage, at least as large as the real structs. */
typedef struct _TW_LOOKASIDE {
    __attribute__((aligned(64))) unsigned char Opaque[192];
} NPAGED_LOOKASIDE_LIST, *PNPAGED_LOOKASIDE_LIST,
  PAGED_LOOKASIDE_LIST, *PPAGED_LOOKASIDE_LIST;

typedef PVOID (NTAPI *PALLOCATE_FUNCTION)(POOL_TYPE PoolType,
                                           SIZE_T NumberOfBytes, ULONG Tag);
typedef VOID (NTAPI *PFREE_FUNCTION)(PVOID Buffer);

/* Tag-taking APIs (tag argument position in the trailing comment). */
NTKERNELAPI PVOID NTAPI ExAllocatePoolWithTag(POOL_TYPE PoolType,
                                              SIZE_T NumberOfBytes,
                                              ULONG Tag);                 /* 3 */
NTKERNELAPI PVOID NTAPI ExAllocatePoolWithQuotaTag(POOL_TYPE PoolType,
                                                   SIZE_T NumberOfBytes,
                                                   ULONG Tag);            /* 3 */
NTKERNELAPI PVOID NTAPI ExAllocatePoolWithTagPriority(POOL_TYPE PoolType,
                                                      SIZE_T NumberOfBytes,
                                                      ULONG Tag,
                                                      EX_POOL_PRIORITY Priority); /* 3 */
NTKERNELAPI PVOID NTAPI ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes,
                                        ULONG Tag);                       /* 3 */
NTKERNELAPI VOID NTAPI ExFreePoolWithTag(PVOID P, ULONG Tag);             /* 2 */
NTKERNELAPI VOID NTAPI ExInitializeNPagedLookasideList(
    PNPAGED_LOOKASIDE_LIST Lookaside, PALLOCATE_FUNCTION Allocate,
    PFREE_FUNCTION Free, ULONG Flags, SIZE_T Size, ULONG Tag, USHORT Depth); /* 6 */
NTKERNELAPI VOID NTAPI ExInitializePagedLookasideList(
    PPAGED_LOOKASIDE_LIST Lookaside, PALLOCATE_FUNCTION Allocate,
    PFREE_FUNCTION Free, ULONG Flags, SIZE_T Size, ULONG Tag, USHORT Depth); /* 6 */

/* Not tag-taking. */
NTKERNELAPI VOID NTAPI ExFreePool(PVOID P);
NTKERNELAPI ULONG __cdecl DbgPrint(PCSTR Format, ...);

/* Entry point (declared so both compilers use the NTAPI convention). */
NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject,
                           PUNICODE_STRING RegistryPath);

#endif /* TAGWHO_KERNEL_H */
