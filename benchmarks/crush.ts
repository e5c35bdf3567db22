export async function run(): Promise<void> {
  throw new Error('crush benchmark not written yet');
}
