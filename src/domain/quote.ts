/**
 * Names from users' ConfigMaps and annotations, made safe to show in a
 * warning or a message: JSON-quoted, control characters escaped, cut to fit.
 * A leaf, shared by the warnings of skips (warnings.ts) and of choices
 * (choices.ts).
 */

/** The kube-apiserver truncates longer warnings. */
export const maxWarningLength = 120

// JSON.stringify escapes only C0 controls: DEL, C1 controls and the line and
// paragraph separators would reach the warning raw.
const unescapedByJson = /[\u007f-\u009f\u2028\u2029]/g
const escapeRest = (char: string) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`

export const jsonQuote = (text: string): string => JSON.stringify(text).replace(unescapedByJson, escapeRest)

/** A user-supplied name, JSON-quoted (control characters escaped) and cut to `max` characters. */
export const quote = (text: string, max: number): string => {
  const quoted = jsonQuote(text)
  if (quoted.length <= max) return quoted
  // Cut by code points, not UTF-16 units, so no lone surrogate is left behind.
  const points = [...quoted.slice(1, -1)]
  let body = ""
  for (const point of points) {
    if (body.length + point.length > max - 3) break
    body += point
  }
  // Never end inside an escape sequence such as \u001f.
  body = body.replace(/\\(u[0-9a-fA-F]{0,3})?$/, "")
  return `"${body}…"`
}

