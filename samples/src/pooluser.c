/*
 * pooluser.sys - a well-behaved driver that uses several tag-taking APIs,
 * each with its own tag.  Its log message contains the word "Leak" as plain
 * text, so `findstr Leak pooluser.sys` is a false hit: the driver never
 * allocates with tag 'Leak'.
 */
#include "tagwho_kernel.h"

#define CTX_TAG   TAG4('P','u','C','x')   /* ExAllocatePool2 */
#define QUOTA_TAG TAG4('P','u','Q','t')   /* ExAllocatePoolWithQuotaTag */
#define PRIO_TAG  TAG4('P','u','P','r')   /* ExAllocatePoolWithTagPriority */
#define TEMP_TAG  TAG4('P','u','T','m')   /* ExAllocatePoolWithTag + ExFreePoolWithTag */
#define NLIST_TAG TAG4('P','u','L','n')   /* ExInitializeNPagedLookasideList */
#define PLIST_TAG TAG4('P','u','L','p')   /* ExInitializePagedLookasideList */

PVOID volatile g_context;
PVOID volatile g_quota;
PVOID volatile g_prio;
volatile ULONG g_size = 0x200;
volatile ULONG g_checks;
NPAGED_LOOKASIDE_LIST g_nlist;
PAGED_LOOKASIDE_LIST g_plist;

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject,
                           PUNICODE_STRING RegistryPath)
{
    SIZE_T n = g_size;
    PVOID tmp;

    (void)RegistryPath;
    g_context = ExAllocatePool2(POOL_FLAG_NON_PAGED, 0x80, CTX_TAG);
    if (g_context == 0) {
        DbgPrint("pooluser: Leak check: no context for %p\n", DriverObject);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    g_quota = ExAllocatePoolWithQuotaTag(
        (POOL_TYPE)(PagedPool | POOL_QUOTA_FAIL_INSTEAD_OF_RAISE), n, QUOTA_TAG);
    g_prio = ExAllocatePoolWithTagPriority(NonPagedPoolNx, n * 2, PRIO_TAG,
                                           LowPoolPriority);
    ExInitializeNPagedLookasideList(&g_nlist, 0, 0, 0, 0x60, NLIST_TAG, 0);
    ExInitializePagedLookasideList(&g_plist, 0, 0, 0, 0x100, PLIST_TAG, 0);

    tmp = ExAllocatePoolWithTag(PagedPool, n + 64, TEMP_TAG);
    if (tmp != 0) {
        *(volatile ULONG *)tmp = 0;
        g_checks++;
        ExFreePoolWithTag(tmp, TEMP_TAG);
    }
    DbgPrint("pooluser: loaded, no Leak here (%u checks)\n", g_checks);
    return STATUS_SUCCESS;
}
