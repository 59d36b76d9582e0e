// Input vectors into abfp_input_unit as N/P beats: included in a vector bench after its
// x_valid, x_ready, x_data, x_mem (one vector per entry), vec, part and idle are declared,
// and after golden_tb_pacing.vh. Called once per clock edge with the number of vectors: a
// beat taken at this edge advances (vec, part), and the next beat is presented unless the
// pacing stalls.
task send_x_beats;
  input integer count;
  begin
    if (x_valid && x_ready) begin
      idle = 0;
      x_valid <= 1'b0;
      if (part == BEATS - 1) begin
        part = 0;
        vec = vec + 1;
      end else begin
        part = part + 1;
      end
    end
    if ((!x_valid || x_ready) && vec < count && !stall(0)) begin
      x_valid <= 1'b1;
      x_data  <= x_mem[vec][part*BEAT_BITS +: BEAT_BITS];
    end
  end
endtask
