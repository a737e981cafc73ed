import { InvalidPriceTableError, type PriceTable } from '../shared';
import { loadPriceTable } from '../pricing';
import { CliError, ExitCodes } from './output';

/**
 * The price table the CLI uses: `--prices-file`, else `MARITACA_PRICES_FILE`, else the built-in
 * table. A bad prices file is input to fix, so it exits 2 like a bad batch file.
 */
export function cliPriceTable(file: string | undefined): PriceTable {
  try {
    return loadPriceTable(file ? { file } : {});
  } catch (err) {
    if (err instanceof InvalidPriceTableError) throw new CliError(err.message, ExitCodes.badInput);
    throw err;
  }
}
