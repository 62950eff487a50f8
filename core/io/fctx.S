/* The context switch under core/io/fiber.c: boost.context's fcontext
 * assembly (boost_context/, BSL-1.0, see boost_context/LICENSE_1_0.txt),
 * built for the architecture being compiled only. Its C face is declared
 * in fiber.c. */

#if defined(__x86_64__) && defined(__ELF__) && !defined(_ILP32)
#include "boost_context/jump_x86_64_sysv_elf_gas.S"
#include "boost_context/make_x86_64_sysv_elf_gas.S"
#elif defined(__aarch64__) && defined(__ELF__)
#include "boost_context/jump_arm64_aapcs_elf_gas.S"
#include "boost_context/make_arm64_aapcs_elf_gas.S"
#else
#error "corral fibers: no context switch for this architecture (x86-64 and arm64 ELF only)"
#endif
