// Vector testbench of the tile controller abfp_tile (golden/hdl, docs/golden.md): whole matrix
// products with their outputs and cycle stamps (kind tile_ctrl).
//
// For each product of tile_ctrl_products.hex ({cycles, stalled, latency, groups-1, tiles-1,
// rows-1}) the bench writes the product's weight-scale store words (tile_ctrl_store.hex,
// (group, tile) order), then offers the command in the product's cycle 0 and, cycle by cycle,
// the x beats of its vectors (tile_ctrl_x.hex) when the product's pattern line
// (tile_ctrl_pattern.hex: {y_ready, x_valid}) allows, and y_ready_i from the same line. It plays
// the reference analog array of docs/rtl_tile.md with the product's latency: every DAC beat is
// compared with tile_ctrl_conversions.hex ({dac_cycle, sx, codes, qy}: codes, sx, tile, group
// and cycle), and the conversion's ADC codes qy are returned in ADC_SHARE beats. Every output is
// compared with tile_ctrl_expected.hex ({cycle, y}): bits and cycle. Products run back to back
// (the tile is idle after a product's last output). Prints "N passed, M failed" (outputs, plus
// failing DAC beats) and ends with $fatal on any failure. The generic +STALL_SEED/+STALL_PCT are
// accepted and ignored: the back-pressure is the set's own, which its cycle stamps assume.
//
// Plusargs: +PRODUCTS=<file> +X=<file> +STORE=<file> +CONVERSIONS=<file> +EXPECTED=<file>
//           +PATTERN=<file> +PRODUCT_COUNT=<n> +VECTOR_COUNT=<n> +WORD_COUNT=<n>
//           +CONVERSION_COUNT=<n> +OUTPUT_COUNT=<n> +CYCLE_COUNT=<n>
module golden_tb_tile_ctrl #(
  parameter integer N               = 128,     // abfp_tile parameter
  parameter integer P               = 16,      // abfp_tile parameter
  parameter integer DAC_BITS        = 8,       // abfp_tile parameter
  parameter integer IN_EXP          = 8,       // abfp_tile parameter
  parameter integer IN_MAN          = 7,       // abfp_tile parameter
  parameter integer SCALE_EXP       = 8,       // abfp_tile parameter
  parameter integer SCALE_MAN       = 7,       // abfp_tile parameter
  parameter integer LANES           = 4,       // abfp_tile parameter
  parameter integer ADC_BITS        = 8,       // abfp_tile parameter
  parameter integer PART_EXP        = 8,       // abfp_tile parameter
  parameter integer PART_MAN        = 7,       // abfp_tile parameter
  parameter integer ACC_EXP         = 8,       // abfp_tile parameter
  parameter integer ACC_MAN         = 23,      // abfp_tile parameter
  parameter integer OUT_EXP         = 8,       // abfp_tile parameter
  parameter integer OUT_MAN         = 7,       // abfp_tile parameter
  parameter integer ADC_SHARE       = 1,       // abfp_tile parameter
  parameter integer TILE_BITS       = 2,       // abfp_tile parameter
  parameter integer GROUP_BITS      = 2,       // abfp_tile parameter
  parameter integer ROW_BITS        = 16,      // abfp_tile parameter
  parameter [31:0]  K_BITS          = 32'h3f810204,  // fp32 bits of K for k_i
  parameter integer MAX_PRODUCTS    = 1024,    // depth of the product memory
  parameter integer MAX_VECTORS     = 65536,   // depth of the x memory
  parameter integer MAX_WORDS       = 65536,   // depth of the store-word memory
  parameter integer MAX_CONVERSIONS = 65536,   // depth of the conversion memory
  parameter integer MAX_OUTPUTS     = 65536,   // depth of the output memory
  parameter integer MAX_CYCLES      = 262144   // depth of the pattern memory
)
`include "golden_tb_clock.vh"

  localparam integer IN_W      = 1 + IN_EXP + IN_MAN;
  localparam integer SW        = 1 + SCALE_EXP + SCALE_MAN;
  localparam integer OUT_W     = 1 + OUT_EXP + OUT_MAN;
  localparam integer BEATS     = N / P;
  localparam integer BEAT_BITS = P * IN_W;
  localparam integer CODE_BITS = N * DAC_BITS;
  localparam integer QY_BITS   = LANES * ADC_BITS;
  localparam integer ADCS      = LANES / ADC_SHARE;
  localparam integer Y_BITS    = LANES * OUT_W;
  localparam integer PROD_W    = ROW_BITS + TILE_BITS + GROUP_BITS + 8 + 1 + 32;
  localparam integer CONV_W    = QY_BITS + CODE_BITS + SW + 32;
  localparam integer EXP_W     = Y_BITS + 32;
  localparam integer SLACK     = 1000;  // cycles past a product's stamped end before giving up
  localparam integer MAX_REPORTS = 20;  // failures printed in full

  reg [PROD_W-1:0]     prod_mem [0:MAX_PRODUCTS-1];
  reg [N*IN_W-1:0]     x_mem [0:MAX_VECTORS-1];
  reg [LANES*SW-1:0]   store_mem [0:MAX_WORDS-1];
  reg [CONV_W-1:0]     conv_mem [0:MAX_CONVERSIONS-1];
  reg [EXP_W-1:0]      exp_mem [0:MAX_OUTPUTS-1];
  reg [1:0]            pat_mem [0:MAX_CYCLES-1];

  reg [1023:0] prod_file, x_file, store_file, conv_file, exp_file, pat_file;
  integer products, vectors, words, conversions, outputs, cycles_total;

  reg                   rst_n;
  reg                   cmd_valid, ws_valid, x_valid, dac_ready, adc_valid, y_ready;
  reg  [ROW_BITS-1:0]   cmd_rows;
  reg  [TILE_BITS-1:0]  cmd_tiles, ws_tile;
  reg  [GROUP_BITS-1:0] cmd_groups, ws_group;
  reg  [LANES*SW-1:0]   ws_data;
  reg  [BEAT_BITS-1:0]  x_data;
  reg  [ADCS*ADC_BITS-1:0] adc_codes;
  wire                  cmd_ready, ws_ready, x_ready, nonfinite, dac_valid, adc_ready, y_valid;
  wire [CODE_BITS-1:0]  dac_codes;
  wire [SW-1:0]         dac_sx;
  wire [TILE_BITS-1:0]  dac_tile;
  wire [GROUP_BITS-1:0] dac_group;
  wire [Y_BITS-1:0]     y;

  abfp_tile #(
    .N(N), .P(P), .DAC_BITS(DAC_BITS), .IN_EXP(IN_EXP), .IN_MAN(IN_MAN),
    .SCALE_EXP(SCALE_EXP), .SCALE_MAN(SCALE_MAN), .LANES(LANES), .ADC_BITS(ADC_BITS),
    .PART_EXP(PART_EXP), .PART_MAN(PART_MAN), .ACC_EXP(ACC_EXP), .ACC_MAN(ACC_MAN),
    .OUT_EXP(OUT_EXP), .OUT_MAN(OUT_MAN), .ADC_SHARE(ADC_SHARE), .TILE_BITS(TILE_BITS),
    .GROUP_BITS(GROUP_BITS), .ROW_BITS(ROW_BITS)
  ) u_tile (
    .clk_i(clk_i), .rst_ni(rst_n), .k_i(K_BITS),
    .cmd_valid_i(cmd_valid), .cmd_ready_o(cmd_ready), .cmd_rows_i(cmd_rows),
    .cmd_tiles_i(cmd_tiles), .cmd_groups_i(cmd_groups),
    .ws_valid_i(ws_valid), .ws_ready_o(ws_ready), .ws_tile_i(ws_tile), .ws_group_i(ws_group),
    .ws_data_i(ws_data),
    .x_valid_i(x_valid), .x_ready_o(x_ready), .x_data_i(x_data), .nonfinite_o(nonfinite),
    .dac_valid_o(dac_valid), .dac_ready_i(dac_ready), .dac_codes_o(dac_codes),
    .dac_sx_o(dac_sx), .dac_tile_o(dac_tile), .dac_group_o(dac_group),
    .adc_valid_i(adc_valid), .adc_ready_o(adc_ready), .adc_codes_i(adc_codes),
    .y_valid_o(y_valid), .y_ready_i(y_ready), .y_o(y)
  );

  // The bench's state: the product in hand, its progress and the reference array.
  integer passed, failed, cycle, phase, prod, c, word, a;
  integer rows, tiles, groups, latency, stamped;
  integer x_base, store_base, conv_base, out_base, pat_base, x_sent, conv_taken, out_got;
  integer ana_full, ana_idx, ana_t, sh_full, sh_idx, sh_sub, cmd_taken;
  reg [PROD_W-1:0]  prod_line;
  reg [CONV_W-1:0]  conv_line;
  reg [EXP_W-1:0]   exp_line;
  reg [N*IN_W-1:0]  x_line;
  reg [1:0]         pat_line;

`include "golden_tb_finish.vh"

  // The inputs of product cycle c, from the product's state (flop-like: non-blocking).
  task drive_cycle;
    begin
      pat_line = (c < stamped) ? pat_mem[pat_base + c] : 2'b11;
      cmd_valid  <= (cmd_taken == 0);
      x_valid    <= pat_line[0] && (x_sent < rows * tiles * BEATS);
      x_line      = x_mem[x_base + x_sent / BEATS];
      x_data     <= x_line[(x_sent % BEATS) * BEAT_BITS +: BEAT_BITS];
      y_ready    <= pat_line[1];
      dac_ready  <= (ana_full == 0);
      adc_valid  <= (sh_full != 0);
      conv_line   = conv_mem[conv_base + sh_idx];
      for (a = 0; a < ADCS; a = a + 1) begin
        adc_codes[a*ADC_BITS +: ADC_BITS] <= conv_line[(a*ADC_SHARE + sh_sub)*ADC_BITS +: ADC_BITS];
      end
    end
  endtask

  // Start product prod: read its line and reset its progress.
  task start_product;
    begin
      prod_line = prod_mem[prod];
      rows      = prod_line[0 +: ROW_BITS] + 1;
      tiles     = prod_line[ROW_BITS +: TILE_BITS] + 1;
      groups    = prod_line[ROW_BITS + TILE_BITS +: GROUP_BITS] + 1;
      latency   = prod_line[ROW_BITS + TILE_BITS + GROUP_BITS +: 8];
      stamped   = prod_line[PROD_W-32 +: 32];
      cmd_rows   <= prod_line[0 +: ROW_BITS];
      cmd_tiles  <= prod_line[ROW_BITS +: TILE_BITS];
      cmd_groups <= prod_line[ROW_BITS + TILE_BITS +: GROUP_BITS];
      x_sent = 0;
      conv_taken = 0;
      out_got = 0;
      word = 0;
      cmd_taken = 0;
      ana_full = 0;
      ana_idx = 0;
      ana_t = 0;
      sh_full = 0;
      sh_idx = 0;
      sh_sub = 0;
      phase = 1;
    end
  endtask

  initial begin
    if (!$value$plusargs("PRODUCTS=%s", prod_file)) $fatal(1, "missing +PRODUCTS=<file>");
    if (!$value$plusargs("X=%s", x_file)) $fatal(1, "missing +X=<file>");
    if (!$value$plusargs("STORE=%s", store_file)) $fatal(1, "missing +STORE=<file>");
    if (!$value$plusargs("CONVERSIONS=%s", conv_file)) $fatal(1, "missing +CONVERSIONS=<file>");
    if (!$value$plusargs("EXPECTED=%s", exp_file)) $fatal(1, "missing +EXPECTED=<file>");
    if (!$value$plusargs("PATTERN=%s", pat_file)) $fatal(1, "missing +PATTERN=<file>");
    if (!$value$plusargs("PRODUCT_COUNT=%d", products)) $fatal(1, "missing +PRODUCT_COUNT");
    if (!$value$plusargs("VECTOR_COUNT=%d", vectors)) $fatal(1, "missing +VECTOR_COUNT");
    if (!$value$plusargs("WORD_COUNT=%d", words)) $fatal(1, "missing +WORD_COUNT");
    if (!$value$plusargs("CONVERSION_COUNT=%d", conversions)) $fatal(1, "missing +CONVERSION_COUNT");
    if (!$value$plusargs("OUTPUT_COUNT=%d", outputs)) $fatal(1, "missing +OUTPUT_COUNT");
    if (!$value$plusargs("CYCLE_COUNT=%d", cycles_total)) $fatal(1, "missing +CYCLE_COUNT");
    if (products < 1 || products > MAX_PRODUCTS || vectors > MAX_VECTORS || words > MAX_WORDS
        || conversions > MAX_CONVERSIONS || outputs > MAX_OUTPUTS
        || cycles_total > MAX_CYCLES) begin
      $fatal(1, "counts exceed the bench's MAX_* depths");
    end
    $readmemh(prod_file, prod_mem, 0, products - 1);
    $readmemh(x_file, x_mem, 0, vectors - 1);
    $readmemh(store_file, store_mem, 0, words - 1);
    $readmemh(conv_file, conv_mem, 0, conversions - 1);
    $readmemh(exp_file, exp_mem, 0, outputs - 1);
    $readmemh(pat_file, pat_mem, 0, cycles_total - 1);
    passed = 0;
    failed = 0;
    cycle = 0;
    prod = 0;
    phase = 0;
    c = 0;
    x_base = 0;
    store_base = 0;
    conv_base = 0;
    out_base = 0;
    pat_base = 0;
    rst_n = 1'b0;
    {cmd_valid, ws_valid, x_valid, dac_ready, adc_valid, y_ready} = 6'd0;
    cmd_rows = {ROW_BITS{1'b0}};
    cmd_tiles = {TILE_BITS{1'b0}};
    cmd_groups = {GROUP_BITS{1'b0}};
    ws_tile = {TILE_BITS{1'b0}};
    ws_group = {GROUP_BITS{1'b0}};
    ws_data = {LANES*SW{1'b0}};
    x_data = {BEAT_BITS{1'b0}};
    adc_codes = {ADCS*ADC_BITS{1'b0}};
  end

  // One process per clock edge: observes the handshakes of the cycle that ends (the tile's
  // outputs as they were before the edge) and drives the next cycle's inputs.
  always @(posedge clk_i) begin
    cycle = cycle + 1;
    if (cycle == 3) rst_n <= 1'b1;
    if (rst_n && phase == 0) start_product;
    if (rst_n && phase == 1) begin
      // Store words of the product, one per clock (ws_ready_o is high while idle).
      if (ws_valid && ws_ready) word = word + 1;
      if (word == groups * tiles) begin
        ws_valid <= 1'b0;
        phase = 2;
        c = 0;
        drive_cycle;
      end else begin
        ws_valid <= 1'b1;
        ws_tile  <= word % tiles;
        ws_group <= word / tiles;
        ws_data  <= store_mem[store_base + word];
      end
    end else if (rst_n && phase == 2) begin
      if (cmd_valid && cmd_ready) cmd_taken = 1;
      if (x_valid && x_ready) x_sent = x_sent + 1;
      if (dac_valid && dac_ready) begin
        conv_line = conv_mem[conv_base + conv_taken];
        if (dac_codes !== conv_line[QY_BITS +: CODE_BITS]
            || dac_sx !== conv_line[QY_BITS + CODE_BITS +: SW]
            || dac_tile !== conv_taken % tiles || dac_group !== (conv_taken / tiles) % groups
            || c != conv_line[CONV_W-32 +: 32]) begin
          failed = failed + 1;
          if (failed <= MAX_REPORTS) begin
            $display("FAIL conversion %0d: DAC beat at cycle %0d (stamp %0d), tile %0d group %0d sx %h codes %h; expected sx %h codes %h",
                     conv_base + conv_taken, c, conv_line[CONV_W-32 +: 32], dac_tile, dac_group,
                     dac_sx, dac_codes, conv_line[QY_BITS + CODE_BITS +: SW],
                     conv_line[QY_BITS +: CODE_BITS]);
          end
        end
      end
      if (y_valid && y_ready) begin
        exp_line = exp_mem[out_base + out_got];
        if (out_got >= rows * groups) begin
          failed = failed + 1;
          $display("FAIL output %0d: unexpected extra output %h", out_base + out_got, y);
        end else if (y === exp_line[0 +: Y_BITS] && c == exp_line[Y_BITS +: 32]) begin
          passed = passed + 1;
        end else begin
          failed = failed + 1;
          if (failed <= MAX_REPORTS) begin
            $display("FAIL output %0d: y got %h at cycle %0d, expected %h at cycle %0d",
                     out_base + out_got, y, c, exp_line[0 +: Y_BITS], exp_line[Y_BITS +: 32]);
          end
        end
        out_got = out_got + 1;
      end
      // The reference array's edge, in the order of simulator.timing.
      if (adc_valid && adc_ready) begin
        sh_sub = sh_sub + 1;
        if (sh_sub == ADC_SHARE) begin
          sh_full = 0;
          sh_sub = 0;
        end
      end
      if (ana_full != 0 && sh_full == 0 && c - ana_t >= latency - 1) begin
        sh_full = 1;
        sh_idx = ana_idx;
        ana_full = 0;
      end
      if (dac_valid && dac_ready) begin
        ana_full = 1;
        ana_idx = conv_taken;
        ana_t = c;
        conv_taken = conv_taken + 1;
      end
      c = c + 1;
      if (out_got == rows * groups) begin
        x_base = x_base + rows * tiles;
        store_base = store_base + groups * tiles;
        conv_base = conv_base + rows * groups * tiles;
        out_base = out_base + rows * groups;
        pat_base = pat_base + stamped;
        prod = prod + 1;
        {cmd_valid, x_valid, dac_ready, adc_valid, y_ready} <= 5'd0;
        if (prod == products) finish;
        phase = 0;
      end else if (c > stamped + SLACK) begin
        $display("FAIL timeout: product %0d, %0d of %0d outputs after %0d cycles", prod,
                 out_got, rows * groups, c);
        failed = failed + rows * groups - out_got;
        finish;
      end else begin
        drive_cycle;
      end
    end
  end
endmodule
