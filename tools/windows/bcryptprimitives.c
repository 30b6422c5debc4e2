/* Stand-in for Windows' bcryptprimitives.dll in a Wine test prefix (tools/windows-check).
 *
 * Rust's standard library draws its random numbers (HashMap seeds) from ProcessPrng, which
 * Windows 10 and later export from bcryptprimitives.dll. Wine 8 has no such DLL, so every
 * Rust program exits at start with "Library bcryptprimitives.dll not found". This DLL exports
 * ProcessPrng and forwards it to RtlGenRandom (advapi32's SystemFunction036), which Wine has.
 * Test prefixes only: real Windows ships the real DLL. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    /* RtlGenRandom takes a 32-bit length: fill larger buffers in chunks. */
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
