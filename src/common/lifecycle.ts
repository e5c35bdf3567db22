/** Components with a lifecycle (daemons, servers, connections) implement Startable; stop is idempotent. */
export interface Startable {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts components in order; if one fails, stops the ones already started (in reverse) and rethrows. Returns a
 * Startable that stops them all in reverse order.
 */
export async function startAll(components: readonly Startable[]): Promise<Startable> {
  const started: Startable[] = [];
  try {
    for (const component of components) {
      await component.start();
      started.push(component);
    }
  } catch (error) {
    await stopAll(started);
    throw error;
  }
  return { start: async () => {}, stop: () => stopAll(started) };
}

/** Stops components in reverse order; every stop runs even if an earlier one fails; the first failure is rethrown. */
export async function stopAll(components: readonly Startable[]): Promise<void> {
  let firstError: unknown;
  for (const component of components.slice().reverse()) {
    try {
      await component.stop();
    } catch (error) {
      firstError ??= error;
    }
  }
  if (firstError !== undefined) throw firstError;
}
