/**
 * The models one worker has loaded, least recently used first out: an inference run's partitions
 * that share a model (a fallback, a retry on the same worker) load it once. Holds the loading
 * promise, so partitions asking at once share one load; a load that fails is not kept.
 */
export class ModelCache<M> {
  private readonly entries = new Map<string, Promise<M>>();

  /** @param capacity How many models to keep; 0 keeps none (every partition loads its own). */
  constructor(private readonly capacity: number) {}

  /** Whether the model under `key` is kept (loaded or loading). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The model under `key`: the one kept, else what `load` gives (then kept). */
  get(key: string, load: () => Promise<M>): Promise<M> {
    const kept = this.entries.get(key);
    if (kept !== undefined) {
      // Most recently used last: a Map iterates in insertion order.
      this.entries.delete(key);
      this.entries.set(key, kept);
      return kept;
    }
    const loading = load();
    if (this.capacity === 0) return loading;
    this.entries.set(key, loading);
    loading.catch(() => {
      if (this.entries.get(key) === loading) this.entries.delete(key);
    });
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return loading;
  }
}
