/**
 * The URL of a compiled worker-thread entry beside the calling module. Under a TypeScript
 * test runner the caller is a .ts file in src/; a thread needs compiled JavaScript, which
 * `npm run build` puts at the same place under dist/.
 */
export function workerUrl(callerUrl: string, relative: string): URL {
  const url = new URL(relative, callerUrl)
  if (callerUrl.endsWith('.ts')) return new URL(url.href.replace('/src/', '/dist/'))
  return url
}
