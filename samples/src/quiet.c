/*
 * quiet.sys - allocates with tag 'Leaf' (one letter away from 'Leak') and
 * only *compares* a header value against the bytes of 'Leak'.  A raw byte
 * scan for "Leak" finds the compared constant, but the driver never
 * allocates with that tag.
 */
#include "tagwho_kernel.h"

#define LEAF_TAG TAG4('L','e','a','f')
/* Decoy: the bytes 'L','e','a','k', only ever compared, never allocated. */
#define LEAK_LOOKALIKE 0x6b61654cUL

PVOID volatile g_leaf;
volatile ULONG g_leaf_size = 0x30;
volatile ULONG g_matches;

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject,
                           PUNICODE_STRING RegistryPath)
{
    PVOID p;

    (void)RegistryPath;
    p = ExAllocatePoolWithTag(NonPagedPool, g_leaf_size, LEAF_TAG);
    if (p == 0)
        return STATUS_INSUFFICIENT_RESOURCES;
    g_leaf = p;
    /* Look at a header word of the driver object: compare only. */
    if (*(volatile ULONG *)DriverObject == LEAK_LOOKALIKE)
        g_matches++;
    return STATUS_SUCCESS;
}
