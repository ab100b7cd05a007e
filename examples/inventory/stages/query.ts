/**
 * Stage 6, query: the stock block of the product page, rebuilt on every write. Product
 * data (title, price) comes through the multi-level cache: L1 in process, L2 shared,
 * then the DB, filling the levels on the way back. The stock figure is the one just
 * written, never a cached one, so the page cannot show stock older than the write.
 */
import type { StageContext } from 'retrace'
import type { Product, Screen, Written } from '../types.js'
import { world } from '../world.js'

/** Below this the page says "only N left". */
export const LOW_STOCK = 10

export function badgeFor(available: number): string {
  if (available <= 0) return 'sold out'
  if (available < LOW_STOCK) return `only ${available} left`
  return 'in stock'
}

async function product(
  sku: string,
  ctx: StageContext,
): Promise<{ product: Product; servedFrom: Screen['servedFrom'] }> {
  const l1 = await ctx.effect('l1.get', { sku }, () => world.l1.get(sku))
  if (l1 !== null) return { product: l1, servedFrom: 'l1' }
  const l2 = await ctx.effect('l2.get', { sku }, () => world.l2.get(sku))
  if (l2 !== null) {
    await ctx.effect('l1.set', { sku }, () => world.l1.set(l2))
    return { product: l2, servedFrom: 'l2' }
  }
  const row = await ctx.effect('db.product', { sku }, () => world.db.product(sku))
  if (row === null) throw new Error(`product ${sku} is not in the catalog`)
  await ctx.effect('l2.set', { sku }, () => world.l2.set(row))
  await ctx.effect('l1.set', { sku }, () => world.l1.set(row))
  return { product: row, servedFrom: 'db' }
}

export async function query(written: Written, ctx: StageContext): Promise<Screen> {
  const { sku, available } = written
  const { product: p, servedFrom } = await product(sku, ctx)
  return { sku, title: p.title, price: p.price, available, badge: badgeFor(available), servedFrom }
}
