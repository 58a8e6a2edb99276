/*
 * leak.sys - behaves like the "leak" option of Sysinternals' myfault.sys:
 * DriverEntry allocates non-paged pool tagged 'Leak' in a loop and never
 * frees it.  The pointers go to a global so the optimiser keeps every call.
 */
#include "tagwho_kernel.h"

#define LEAK_COUNT 64
#define LEAK_SIZE  1024

PVOID volatile g_leaked[LEAK_COUNT];
volatile ULONG g_leak_count = LEAK_COUNT;

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject,
                           PUNICODE_STRING RegistryPath)
{
    ULONG i, n = g_leak_count;

    (void)DriverObject;
    (void)RegistryPath;
    for (i = 0; i < n && i < LEAK_COUNT; i++)
        g_leaked[i] = ExAllocatePoolWithTag(NonPagedPoolNx, LEAK_SIZE,
                                            TAG4('L','e','a','k'));
    return STATUS_SUCCESS;
}
