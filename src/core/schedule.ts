/** Lets the event loop run (decode callbacks, progress) between synchronous compute steps. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
