/**
 * `queuectl config get|set|unset`.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { json, palette, table } from "../render.ts";
import { EXIT } from "../../errors.ts";
import {
  CONFIG_KEYS,
  configEntryJson,
  configKey,
  DEFAULT_CONFIG,
  formatConfigValue,
  parseConfigValue,
} from "../../config.ts";

export async function run(ctx: Context): Promise<number> {
  const [first, second] = ctx.args.positionals;
  const command = ctx.command;
  // Refuse a bad key or value before opening, which would create the database on first use.
  if (first !== undefined) configKey(first);
  if (command === "config set") parseConfigValue(first!, second!);
  const queue = await ctx.openQueue();
  if (command === "config set") {
    configKey(first!);
    const value = await queue.configSet(first!, second!);
    ctx.io.out(
      ctx.json
        ? json({ key: first, ...configEntryJson(first!, value, true) })
        : `${first} = ${formatConfigValue(first!, value)}\n`,
    );
    return EXIT.ok;
  }
  if (command === "config unset") {
    const was = await queue.configUnset(first!);
    const definition = configKey(first!);
    if (ctx.json) {
      ctx.io.out(
        json({ key: first, ...configEntryJson(first!, definition.default, false), was_set: was }),
      );
    } else {
      ctx.io.out(
        `${first} = ${formatConfigValue(first!, definition.default)} (default${
          was ? "" : "; it was not set"
        })\n`,
      );
    }
    return EXIT.ok;
  }
  const overrides = await queue.configOverrides();
  if (first !== undefined) {
    const definition = configKey(first);
    const value = overrides[first] ?? definition.default;
    ctx.io.out(
      ctx.json
        ? json({ key: first, ...configEntryJson(first, value, first in overrides) })
        : `${formatConfigValue(first, value)}\n`,
    );
    return EXIT.ok;
  }
  const keys = Object.keys(CONFIG_KEYS);
  if (ctx.json) {
    ctx.io.out(json(Object.fromEntries(keys.map((key) => {
      const value = overrides[key] ?? DEFAULT_CONFIG[CONFIG_KEYS[key]!.field];
      return [key, configEntryJson(key, value, key in overrides)];
    }))));
    return EXIT.ok;
  }
  const p = palette(ctx.color);
  ctx.io.out(table(
    p,
    ["KEY", "VALUE", "DEFAULT", "MEANING"],
    keys.map((key) => {
      const definition = CONFIG_KEYS[key]!;
      const isSet = key in overrides;
      const value = formatConfigValue(key, overrides[key] ?? definition.default);
      return [
        key,
        isSet ? p.bold(value) : value,
        formatConfigValue(key, definition.default),
        definition.help,
      ];
    }),
  ));
  return EXIT.ok;
}
