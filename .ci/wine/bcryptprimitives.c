/*
 * A stand-in for Windows's bcryptprimitives.dll, for test runs under Wine
 * 8, which lacks it: Rust's standard library imports ProcessPrng from it
 * for its random numbers (HashMap keys), and a Windows binary that cannot
 * resolve the import does not start. This one fills the buffer from
 * RtlGenRandom (advapi32's SystemFunction036), which Wine has.
 * `cargo xtask wine` builds it beside the binaries it runs.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x7fffffff ? 0x7fffffff : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
