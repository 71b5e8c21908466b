// typage (npm's age-encryption) as a command line, for tests/crypto/test_interop_pq.py:
//
//   node cli.mjs DIR encrypt RECIPIENT…   stdin to the recipients (age1…, age1pq1…, age1tag1…, age1tagpq1…)
//   node cli.mjs DIR decrypt IDENTITY…    stdin with the identities (AGE-SECRET-KEY-1…, AGE-SECRET-KEY-PQ-1…)
//   node cli.mjs DIR keygen-pq            a new hybrid identity, then its recipient, one a line
//
// DIR is where `npm ci` installed package-lock.json (the Makefile's .cache/typage); stdin and stdout are
// binary. An error is one line on stderr and exit status 1.
import { webcrypto } from "node:crypto"
import { createRequire } from "node:module"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"

const [dir, command, ...keys] = process.argv.slice(2)
// typage's @noble libraries take their randomness from globalThis.crypto, which node has from 19 on; Debian
// bookworm's nodejs is 18 (typage 0.3.1 then fails with "crypto.getRandomValues must be defined").
globalThis.crypto ??= webcrypto
// The package as node would resolve it from DIR: this script lives in the repository, the package under .cache.
const entry = createRequire(resolve(dir, "package.json")).resolve("age-encryption")
const age = await import(pathToFileURL(entry).href)

async function stdin() {
    const chunks = []
    for await (const chunk of process.stdin) chunks.push(chunk)
    return new Uint8Array(Buffer.concat(chunks))
}

try {
    if (command === "encrypt") {
        const encrypter = new age.Encrypter()
        for (const recipient of keys) encrypter.addRecipient(recipient)
        process.stdout.write(await encrypter.encrypt(await stdin()))
    } else if (command === "decrypt") {
        const decrypter = new age.Decrypter()
        for (const identity of keys) decrypter.addIdentity(identity)
        process.stdout.write(await decrypter.decrypt(await stdin()))
    } else if (command === "keygen-pq") {
        const identity = await age.generateHybridIdentity()
        process.stdout.write(`${identity}\n${await age.identityToRecipient(identity)}\n`)
    } else {
        throw new Error(`unknown command ${command}: encrypt, decrypt or keygen-pq`)
    }
} catch (error) {
    process.stderr.write(`typage: ${error.message}\n`)
    process.exitCode = 1
}
