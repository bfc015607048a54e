// The catalog and the stored models: ModelList, StorageReport, DeleteModel.
import { T, clip } from '../shared/protocol.js';
import { unload } from './loading.js';

/** Post the catalog with what is stored on this device. */
export async function listModels(ctx, id) {
  const cat = await ctx.parts.catalog;
  const models = await Promise.all(cat.models.map(async (m) => ({
    model_id: m.id, name: m.name, file: m.file, bytes: m.bytes, sha256: m.sha256,
    quantization: m.quantization, license: m.license, cached: await ctx.parts.weights.isCached(m),
    version: m.version ?? '', context_length: m.context_length ?? 0,
  })));
  ctx.post(T.ModelList, { models, default_id: cat.default }, id);
}

/** Post what is stored, how much of it, and the browser's quota. */
export async function storageReport(ctx, id) {
  const { weights } = ctx.parts;
  const cat = await ctx.parts.catalog;
  const [stored, { usage, quota, persisted }] = await Promise.all([weights.storedModels(), weights.storageEstimate()]);
  const models = stored.map((m) => ({
    model_id: m.id, name: m.name, version: m.version, bytes: m.bytes, stored_bytes: m.stored, complete: m.complete,
    current: cat.models.some((c) => c.id === m.id && c.sha256 === m.sha256),
  }));
  ctx.post(T.StorageReport, { models, usage, quota, persisted }, id);
}

/** Delete a stored model (unloading it first when it is the one loaded). */
export async function deleteStored(ctx, id, modelId) {
  const { weights } = ctx.parts;
  if (!(await weights.storedModels()).some((m) => m.id === modelId)) {
    return ctx.fail(id, 'unknown_model', `No model "${clip(modelId)}" is stored on this device.`, '', 'model_id');
  }
  if (ctx.state.loaded?.model.id === modelId) ctx.post(T.ModelUnloaded, { model_id: await unload(ctx) }, id);
  await weights.deleteModel(modelId);
  await listModels(ctx, id);
  return storageReport(ctx, id);
}
