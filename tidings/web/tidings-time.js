// When a notification came, as people say it: "just now", "3 minutes ago", "2 hours ago",
// "yesterday", then a date. Words come from Intl.RelativeTimeFormat in the page's
// language, so a German page reads "vor 3 Minuten" and "gestern" without a catalogue here.

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;

/** `lang` if the browser knows it as a locale tag, else "en" (Intl throws on a bad tag). */
export function usableLanguage(lang) {
  try {
    return Intl.getCanonicalLocales(lang || "en")[0] || "en";
  } catch (error) {
    return "en";
  }
}

// Calendar days between two instants in the viewer's time zone (23:50 yesterday is
// "yesterday" at 00:10 today, although only 20 minutes passed: minutes win first).
function daysBetween(earlier, later) {
  const start = (date) => new Date(date.getFullYear(), date.getMonth(), date.getDate());
  return Math.round((start(later) - start(earlier)) / (24 * HOUR));
}

/** `date` relative to `now`, in `lang`. A time slightly ahead of this clock is "just now". */
export function relativeTime(date, now, lang) {
  const words = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  const since = now - date;
  // Intl says "now" for zero seconds; English readers expect "just now" in an inbox.
  if (since < MINUTE) return /^en(-|$)/i.test(lang) ? "just now" : words.format(0, "second");
  if (since < HOUR) return words.format(-Math.floor(since / MINUTE), "minute");
  const days = daysBetween(date, now);
  if (days <= 0) return words.format(-Math.floor(since / HOUR), "hour");
  if (days === 1) return words.format(-1, "day");
  const year = date.getFullYear() === now.getFullYear() ? {} : { year: "numeric" };
  return date.toLocaleDateString(lang, { month: "short", day: "numeric", ...year });
}

/** The whole instant, for a `title`: date, time and time zone offset are unambiguous. */
export function fullTime(date, lang) {
  return date.toLocaleString(lang, { dateStyle: "full", timeStyle: "long" });
}
