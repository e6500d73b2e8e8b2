/**
 * Worker threads that run one of reckon's own modules, from the compiled JavaScript as installed,
 * or from the TypeScript sources (tests, benchmarks) with tsx's loader registered in the thread
 * first. tsx is found from this module, not from the working directory, which may be anywhere.
 */
import { Worker } from 'node:worker_threads';

/**
 * The module `name` next to the module at `callerUrl` (pass `import.meta.url`), with the
 * caller's own extension: `.ts` when reckon runs from its sources, `.js` when compiled.
 */
export function siblingModule(callerUrl: string, name: string): URL {
  return new URL(`./${name}${callerUrl.endsWith('.ts') ? '.ts' : '.js'}`, callerUrl);
}

/** Starts a thread running the module at `url`; it does not keep the process alive (`unref`). */
export function startModuleThread(url: URL): Worker {
  const worker = url.pathname.endsWith('.ts')
    ? new Worker(
        `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`,
        { eval: true },
      )
    : new Worker(url);
  worker.unref();
  return worker;
}
