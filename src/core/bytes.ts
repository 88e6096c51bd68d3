/**
 * A byte array of `length` for a caller that writes every byte: unlike `new Uint8Array(length)`,
 * which has the allocator zero it (memset was 5% of the decode-and-batch CPU), and unlike
 * `Buffer.allocUnsafe`, whose small buffers share a pool a consumer could read past or retain.
 */
export function uninitializedBytes(length: number): Uint8Array {
  return new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
}
