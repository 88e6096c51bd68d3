/** A name → definition table, listed in natural name order, with one-line errors that list the names. */
export class Registry<T extends { name: string }> {
  private readonly entries = new Map<string, T>();

  constructor(private readonly kind: string) {}

  register(definition: T): void {
    if (this.entries.has(definition.name)) throw new Error(`${this.kind} '${definition.name}' is already registered`);
    this.entries.set(definition.name, definition);
  }

  list(): T[] {
    return [...this.entries.values()].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  }

  find(name: string): T | undefined {
    return this.entries.get(name);
  }

  get(name: string): T {
    const definition = this.entries.get(name);
    if (!definition) throw new Error(`unknown ${this.kind} '${name}'; known ${this.kind}s: ${this.list().map((d) => d.name).join(', ')}`);
    return definition;
  }
}
