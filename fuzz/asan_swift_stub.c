/*
 * asan_swift_stub.c: preloaded after clang's ASan runtime into an
 * uninstrumented postgres (fuzz/run.sh, scripts/sanitize.sh).
 *
 * Why: the ASan runtime, on its first malloc, looks up the optional symbol
 * swift_demangle with dlsym().  In postgres the first malloc happens inside
 * the constructor of libgpg-error (pulled in by gnutls/ldap), while glibc's
 * bindtextdomain() holds _nl_state_lock for writing; the failed dlsym()
 * makes dlerror() translate its message with dcgettext(), which takes and
 * releases the same lock, and the next bindtextdomain() (postgres's own, in
 * main) waits forever.  With this symbol present the lookup succeeds and no
 * message is translated.  Returning NULL makes ASan demangle as usual.
 */
#include <stddef.h>

char	   *swift_demangle(const char *mangled, size_t len, char *out,
						   size_t *outlen, unsigned flags);

char *
swift_demangle(const char *mangled, size_t len, char *out, size_t *outlen,
			   unsigned flags)
{
	return NULL;
}
