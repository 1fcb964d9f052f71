/** `serve`: the HTTPS webhook. (Being built; see the serve issue.) */
import { Effect } from "effect"
import { Command } from "effect/cli"

export const serveCommand = Command.make("serve", {}, () => Effect.void).pipe(
  Command.withDescription("Run the HTTPS admission webhook")
)
