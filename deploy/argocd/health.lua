-- ArgoCD health check for addonstack.dev/AddonStack, from its kstatus conditions.
-- Healthy: Ready=True for the current generation. Degraded: Stalled=True (the operator cannot
-- progress without a change). Progressing: anything else, including a status older than the spec.
local hs = { status = "Progressing", message = "Waiting for the AddonStack operator" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation or nil
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local ready, stalled
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then ready = c end
  if c.type == "Stalled" then stalled = c end
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. (stalled.message or "")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "All services ready (" .. tostring(obj.status.summary or "") .. ")"
  return hs
end
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
end
return hs
