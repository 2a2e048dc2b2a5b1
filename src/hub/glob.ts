/**
 * Glob matching of topic names (`*` any run of characters, `?` one character, the rest literal),
 * for the server API's `topics` filter. A loop, not a regular expression: a pattern turned into a
 * backtracking regex (`*a*a*a*b` → `^.*a.*a.*a.*b$`) takes time exponential in its stars, and one
 * call would hold the event loop for minutes; this takes at most pattern × text steps.
 */

/**
 * Whether `text` matches the glob `pattern`: `*` matches any run of characters (none included),
 * `?` exactly one character (a code point), every other character itself. Case-sensitive, like
 * topic names.
 */
export function globMatch(pattern: string, text: string): boolean {
  // Code points, so `?` never matches half of a surrogate pair.
  const p = [...pattern];
  const t = [...text];
  let pi = 0;
  let ti = 0;
  // Where the last `*` was, and the text position it is taken to stretch up to so far.
  let star = -1;
  let resume = 0;
  while (ti < t.length) {
    const c = p[pi];
    if (c === '*') {
      star = pi++;
      resume = ti;
    } else if (c !== undefined && (c === '?' || c === t[ti])) {
      pi++;
      ti++;
    } else if (star >= 0) {
      // A mismatch after a star: let the star swallow one more character and retry from there.
      // Only the last star ever needs to stretch (greedy on the left is never wrong), so this
      // never goes back further than it: at most pattern × text steps.
      pi = star + 1;
      ti = ++resume;
    } else {
      return false;
    }
  }
  while (p[pi] === '*') pi++;
  return pi === p.length;
}
